"""A PostgreSQL socket that can be taken away: a byte-for-byte forwarder between the application and the test
database, listening where libpq looks for a server (DIR/.s.PGSQL.PORT).

`down()` does to the application what stopping the server does: every open connection is closed under it and
the socket file is gone, so a new connection fails as it does against a stopped cluster. `up()` brings the socket
back. `cut_on(marker)` closes a connection the moment the application sends bytes containing `marker` (never
forwarded), e.g. in the middle of a transaction's INSERT.
"""
import os
import selectors
import socket
import tempfile
import threading


class PostgresProxy:
    def __init__(self, db_settings):
        self.dir = tempfile.mkdtemp(prefix="pgproxy-")
        self.port = str(db_settings.get("PORT") or "5432")
        host = db_settings.get("HOST") or "/var/run/postgresql"
        if host.startswith("/"):
            self.target = (socket.AF_UNIX, os.path.join(host, f".s.PGSQL.{self.port}"))
        else:
            self.target = (socket.AF_INET, (host, int(self.port)))
        self.path = os.path.join(self.dir, f".s.PGSQL.{self.port}")
        self.listener = None
        self.pairs = {}  # socket -> its peer
        self.marker = None
        self.accepted = 0
        self.cuts = 0
        self.lock = threading.Lock()
        self.selector = selectors.DefaultSelector()
        self.wake_r, self.wake_w = socket.socketpair()
        self.selector.register(self.wake_r, selectors.EVENT_READ)
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    # ---- control (from the test) ----

    def up(self):
        with self.lock:
            if self.listener is None:
                listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                listener.bind(self.path)
                listener.listen(64)
                listener.setblocking(False)
                self.listener = listener
                self.selector.register(listener, selectors.EVENT_READ)
        self._wake()

    def down(self):
        with self.lock:
            if self.listener is not None:
                self.selector.unregister(self.listener)
                self.listener.close()
                self.listener = None
                os.unlink(self.path)
            for sock in list(self.pairs):
                self._close(sock)
        self._wake()

    def cut_on(self, marker):
        self.marker = marker

    def close(self):
        self.down()
        self.running = False
        self._wake()
        self.thread.join(5)
        os.rmdir(self.dir)

    # ---- the forwarding thread ----

    def _wake(self):
        self.wake_w.send(b"x")

    def _close(self, sock):
        peer = self.pairs.pop(sock, None)
        for s in (sock, peer):
            if s is None:
                continue
            self.pairs.pop(s, None)
            try:
                self.selector.unregister(s)
            except (KeyError, ValueError):
                pass
            s.close()

    def _run(self):
        while self.running:
            for key, _events in self.selector.select(timeout=1):
                sock = key.fileobj
                with self.lock:
                    if sock is self.wake_r:
                        sock.recv(4096)
                    elif sock is self.listener:
                        self._accept()
                    elif sock in self.pairs:
                        self._forward(sock, client=key.data == "client")

    def _accept(self):
        try:
            client, _ = self.listener.accept()
        except BlockingIOError:
            return
        server = socket.socket(self.target[0], socket.SOCK_STREAM)
        server.connect(self.target[1])
        self.accepted += 1
        self.pairs[client], self.pairs[server] = server, client
        self.selector.register(client, selectors.EVENT_READ, "client")
        self.selector.register(server, selectors.EVENT_READ, "server")

    def _forward(self, sock, *, client):
        try:
            data = sock.recv(65536)
        except OSError:
            data = b""
        if not data:
            self._close(sock)
            return
        if client and self.marker is not None and self.marker in data:
            self.marker = None
            self.cuts += 1
            self._close(sock)
            return
        try:
            self.pairs[sock].sendall(data)
        except OSError:
            self._close(sock)
