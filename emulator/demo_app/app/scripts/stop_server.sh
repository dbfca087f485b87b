#!/bin/bash
# Stops the web server started by start_server.sh, if it runs.
if [ -f /var/run/webserver.pid ]; then
  kill "$(cat /var/run/webserver.pid)" 2>/dev/null || true
  rm -f /var/run/webserver.pid
fi
echo "web server stopped"
