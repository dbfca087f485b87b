// The sample's tests: the page must load app.js and app.js must define greet().
const assert = require("assert");
const fs = require("fs");

const html = fs.readFileSync("src/index.html", "utf8");
assert.ok(html.includes('<script src="app.js">'), "index.html must load app.js");
const { greet } = require("./src/app.js");
assert.strictEqual(greet("pipelocal"), "Hello, pipelocal!");
console.log("2 tests passed");
