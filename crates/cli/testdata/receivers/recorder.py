#!/usr/bin/env python3
"""A stand-in for the chat and paging services' HTTP APIs: records every request (method, path,
query, headers, body) as a JSON line and answers as the service does — 200 with a JSON body,
and WeChat's `gettoken` with an access token. Usage: recorder.py PORT OUT.jsonl"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit, parse_qs

PORT, OUT = int(sys.argv[1]), sys.argv[2]


class Handler(BaseHTTPRequestHandler):
    def record(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        url = urlsplit(self.path)
        entry = {
            "method": self.command,
            "path": url.path,
            "query": parse_qs(url.query),
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body,
        }
        with open(OUT, "a") as f:
            f.write(json.dumps(entry) + "\n")
        answer = {"ok": True, "errcode": 0}
        if url.path.endswith("/gettoken"):
            answer = {"errcode": 0, "access_token": "wechat-token", "expires_in": 7200}
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = record
    do_POST = record

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
