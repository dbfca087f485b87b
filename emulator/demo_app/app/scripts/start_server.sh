#!/bin/bash
# Serves /var/www/html on port 80. Output goes to a log file so the hook can return.
set -e
mkdir -p /var/www/html
nohup python3 -m http.server 80 --directory /var/www/html >/var/log/webserver.log 2>&1 &
echo $! > /var/run/webserver.pid
for _ in $(seq 50); do
  if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1/')" 2>/dev/null; then
    echo "web server started (pid $(cat /var/run/webserver.pid))"
    exit 0
  fi
  sleep 0.1
done
echo "web server did not start" >&2
exit 1
