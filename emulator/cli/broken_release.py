"""The demo's bad releases: a start script whose server starts and answers HTTP 500, so that a
CloudWatch alarm has something to catch."""

from __future__ import annotations

_SCRIPT = """#!/bin/bash
# BAD RELEASE: {what} (the demo's alarm catches it).
set -e
mkdir -p /var/www/html
cat > /tmp/broken_server.py <<'PY'
import functools, http.server
class Broken(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        if {keep_static} and self.path.endswith(".js"):
            return super().do_GET()
        self.send_response(500)
        self.end_headers()
        self.wfile.write(b"internal server error")
    def log_message(self, *args):
        pass
handler = functools.partial(Broken, directory="/var/www/html")
http.server.ThreadingHTTPServer(("", 80), handler).serve_forever()
PY
nohup python3 /tmp/broken_server.py >/var/log/webserver.log 2>&1 &
echo $! > /var/run/webserver.pid
for _ in $(seq 50); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1', 80), 1)" 2>/dev/null && exit 0
  sleep 0.1
done
exit 1
"""


def broken_start(keep_static: bool = False) -> str:
    """scripts/start_server.sh for a bad release: every request answers 500, or, with `keep_static`,
    every page while the .js files still serve (a health check on a static file still passes)."""
    what = ("pages answer HTTP 500 while .js files still serve, so health checks pass" if keep_static
            else "this server answers every request with HTTP 500")
    return _SCRIPT.format(what=what, keep_static=keep_static)
