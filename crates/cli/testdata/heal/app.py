#!/usr/bin/env python3
"""A small HTTP service the heal tests break for real.

    app.py serve STATE PORT      serve (foreground)
    app.py start STATE PORT      start `serve` detached, pid in STATE/pid
    app.py restart STATE PORT    kill the running one, start again
    app.py deploy STATE PORT V   remember the current version as previous, switch to V, restart
    app.py rollback STATE PORT   switch back to the previous version, restart
    app.py status STATE PORT     print {"version", "previous"} as JSON

The version lives in STATE/current (STATE/previous before a deploy). Version "bad" answers
every request with 500. If STATE/leak exists, memory grows by 1 MiB every 100 ms. /crash
exits at once. /metrics has app_up, app_info{version}, app_error_ratio, app_memory_bytes and
app_dir_bytes (bytes in STATE/logs).
"""
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time


def read(path, default=""):
    try:
        with open(path) as f:
            return f.read().strip()
    except FileNotFoundError:
        return default


def rss():
    for line in read("/proc/self/status").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def dir_bytes(d):
    total = 0
    for root, _, files in os.walk(d):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


def serve(state, port):
    version = read(os.path.join(state, "current"), "v1")
    hoard = []
    if os.path.exists(os.path.join(state, "leak")):
        def leak():
            while True:
                hoard.append(bytearray(1 << 20))
                time.sleep(0.1)
        threading.Thread(target=leak, daemon=True).start()

    class H(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def reply(self, code, body, ctype="text/plain"):
            b = body.encode()
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(b)))
            self.end_headers()
            self.wfile.write(b)

        def do_GET(self):
            if self.path == "/crash":
                os._exit(1)
            if self.path == "/metrics":
                lines = [
                    "app_up 1",
                    'app_info{version="%s"} 1' % version,
                    "app_error_ratio %d" % (1 if version == "bad" else 0),
                    "app_memory_bytes %d" % rss(),
                    "app_dir_bytes %d" % dir_bytes(os.path.join(state, "logs")),
                ]
                return self.reply(200, "\n".join(lines) + "\n")
            if version == "bad":
                return self.reply(500, "broken\n")
            return self.reply(200, "ok %s\n" % version)

    http.server.ThreadingHTTPServer.allow_reuse_address = True
    http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()


def start(state, port):
    p = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "serve", state, str(port)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    with open(os.path.join(state, "pid"), "w") as f:
        f.write(str(p.pid))
    # Wait until it answers, so a restart that returns 0 has really started.
    import urllib.request
    for _ in range(100):
        try:
            urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=1).read()
            return
        except Exception:
            time.sleep(0.05)
    sys.exit("the service did not come up")


def stop(state):
    pid = read(os.path.join(state, "pid"))
    if pid:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass
        for _ in range(100):
            try:
                os.kill(int(pid), 0)
                time.sleep(0.02)
            except ProcessLookupError:
                break


def main():
    cmd, state, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    os.makedirs(os.path.join(state, "logs"), exist_ok=True)
    if cmd == "serve":
        serve(state, port)
    elif cmd == "start":
        start(state, port)
    elif cmd == "restart":
        stop(state)
        start(state, port)
    elif cmd == "deploy":
        with open(os.path.join(state, "previous"), "w") as f:
            f.write(read(os.path.join(state, "current"), "v1"))
        with open(os.path.join(state, "current"), "w") as f:
            f.write(sys.argv[4])
        stop(state)
        start(state, port)
    elif cmd == "rollback":
        prev = read(os.path.join(state, "previous"))
        if not prev:
            sys.exit("no previous version to roll back to")
        with open(os.path.join(state, "current"), "w") as f:
            f.write(prev)
        os.remove(os.path.join(state, "previous"))
        stop(state)
        start(state, port)
    elif cmd == "status":
        print(json.dumps({"version": read(os.path.join(state, "current"), "v1"),
                          "previous": read(os.path.join(state, "previous"))}))
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
