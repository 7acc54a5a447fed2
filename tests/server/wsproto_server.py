#!/usr/bin/python3
"""A management server built on Debian's python3-wsproto, the library under
RDFM's server (simple-websocket), so that one test of our WebSocket client
runs against framing and handshake code we did not write.

It answers POST /api/v1/auth/device with a token (no signature check: the
test is about the channel) and /api/v1/devices/ws with wsproto.  On the
first connection it pings, waits for the capability report, sends
action_list_query in three fragments, then an action_exec (compressed if
the client offered permessage-deflate, which ours does not), waits for the
result and closes with 4002; the second connection is kept open.  Every
event goes to the JSON-lines log named by --log.

usage: wsproto_server.py --log FILE
prints "READY http://127.0.0.1:PORT" once it listens.
"""

import argparse
import json
import socket
import socketserver
import sys
import threading
import time

from wsproto import ConnectionType, WSConnection
from wsproto.events import (AcceptConnection, BytesMessage, CloseConnection,
                            Ping, Pong, RejectConnection, Request,
                            TextMessage)
from wsproto.extensions import PerMessageDeflate

LOCK = threading.Lock()
STATE = {"connections": 0}
LOG = None


def log(event, **kw):
    kw["event"] = event
    kw["time"] = time.time()
    with LOCK:
        LOG.write(json.dumps(kw) + "\n")
        LOG.flush()


class Session:
    """One client connection driven through wsproto's state machine."""

    def __init__(self, sock, first_bytes):
        self.sock = sock
        self.ws = WSConnection(ConnectionType.SERVER)
        self.ws.receive_data(first_bytes)
        self.texts = []
        self.number = 0
        self.closed = False

    def send(self, event):
        self.sock.sendall(self.ws.send(event))

    def pump(self, until, timeout=10.0):
        """Reads and handles events until until() is true."""
        end = time.time() + timeout
        while not until():
            if self.closed or time.time() > end:
                return False
            for ev in self.ws.events():
                self.handle(ev)
            if until():
                return True
            self.sock.settimeout(max(0.05, end - time.time()))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                data = b""
            if not data:
                self.closed = True
                self.ws.receive_data(None)
            else:
                self.ws.receive_data(data)
        return True

    def handle(self, ev):
        if isinstance(ev, Request):
            self.accept(ev)
        elif isinstance(ev, TextMessage):
            # wsproto hands fragments over as they come; join them.
            self.partial = getattr(self, "partial", "") + ev.data
            if ev.message_finished:
                msg = json.loads(self.partial)
                self.partial = ""
                self.texts.append(msg)
                log("message", connection=self.number, method=msg.get("method"),
                    message=msg)
        elif isinstance(ev, BytesMessage):
            log("binary", connection=self.number)
        elif isinstance(ev, Ping):
            self.send(ev.response())
        elif isinstance(ev, Pong):
            log("pong", connection=self.number, payload=ev.payload.decode())
        elif isinstance(ev, CloseConnection):
            log("close_received", connection=self.number, code=ev.code)
            self.closed = True

    def accept(self, req):
        headers = {k.decode().lower(): v.decode() for k, v in req.extra_headers}
        auth = headers.get("authorization", "")
        offered = any("permessage-deflate" in e for e in req.extensions)
        with LOCK:
            STATE["connections"] += 1
            self.number = STATE["connections"]
        log("handshake", connection=self.number, path=req.target,
            authorization_ok=auth.startswith("Bearer token="),
            offered_deflate=offered)
        if not auth.startswith("Bearer token="):
            self.send(RejectConnection(status_code=401))
            self.closed = True
            return
        self.deflate = offered
        ext = [PerMessageDeflate()] if offered else []
        self.send(AcceptConnection(extensions=ext))

    def has(self, method):
        return lambda: any(m.get("method") == method for m in self.texts)

    def run(self):
        if not self.pump(lambda: self.number > 0 or self.closed):
            return
        if self.closed:
            return
        self.send(TextMessage(data=json.dumps(
            {"method": "alert", "alert": {"message": "connected"}})))
        if self.number > 1:
            # The reconnection: kept open until the client goes.
            self.pump(lambda: False, timeout=60)
            return
        self.send(Ping(payload=b"are-you-there"))
        self.pump(lambda: False, timeout=0.5)
        if not self.pump(self.has("capability_report")):
            log("error", what="no capability_report")
            return
        query = json.dumps({"method": "action_list_query"})
        a, b = len(query) // 3, 2 * len(query) // 3
        self.send(TextMessage(data=query[:a], message_finished=False))
        self.send(TextMessage(data=query[a:b], message_finished=False))
        self.send(TextMessage(data=query[b:], message_finished=True))
        log("sent_fragmented", parts=3)
        if not self.pump(self.has("action_list_update")):
            log("error", what="no action_list_update after the fragments")
            return
        # With permessage-deflate negotiated wsproto compresses this frame.
        self.send(TextMessage(data=json.dumps(
            {"method": "action_exec", "execution_id": "wsproto-1",
             "action_id": "rdfm.mcumgr.echo"})))
        log("sent_exec", compressed=self.deflate)
        if not self.pump(self.has("action_exec_result")):
            log("error", what="no action_exec_result")
            return
        self.send(CloseConnection(code=4002,
                                  reason="duplicate connections not allowed"))
        log("sent_close", code=4002)
        self.pump(lambda: self.closed, timeout=3)


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        sock = self.request
        sock.settimeout(10)
        try:
            data = sock.recv(65536)
        except OSError:
            return
        if data.startswith(b"POST /api/v1/auth/device"):
            self.auth(sock, data)
            return
        try:
            Session(sock, data).run()
        except Exception as e:  # a test server: report and go on
            log("error", what=repr(e))

    def auth(self, sock, data):
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(body) < length:
            more = sock.recv(65536)
            if not more:
                break
            body += more
        reply = json.dumps({"expires": 300, "token": "wsproto-token"}).encode()
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\nConnection: close\r\n\r\n%s"
                     % (len(reply), reply))
        log("auth")


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def main():
    global LOG
    p = argparse.ArgumentParser()
    p.add_argument("--log", required=True)
    args = p.parse_args()
    LOG = open(args.log, "a")
    srv = Server(("127.0.0.1", 0), Handler)
    print("READY http://127.0.0.1:%d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
