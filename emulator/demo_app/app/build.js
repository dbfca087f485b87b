// Copies the site into dist/ and stamps the build into index.html.
const fs = require("fs");
const path = require("path");

const out = path.join(__dirname, "dist");
fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(out);
const commit = (process.env.CODEBUILD_RESOLVED_SOURCE_VERSION || "local").slice(0, 8);
const html = fs.readFileSync(path.join(__dirname, "src", "index.html"), "utf8").replace("{{BUILD}}", commit);
fs.writeFileSync(path.join(out, "index.html"), html);
fs.copyFileSync(path.join(__dirname, "src", "app.js"), path.join(out, "app.js"));
console.log("built dist/index.html and dist/app.js for commit " + commit);
