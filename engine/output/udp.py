"""A non-blocking UDP sender for the app outputs: a datagram leaves at once or is dropped, never queued."""

import socket


class UdpSender:
    """Sends datagrams to one address. A full socket buffer drops the datagram (counted) instead of waiting:
    every datagram of ours carries a whole frame, so the next one makes up for it, as UDP receivers expect."""

    def __init__(self, host: str, port: int) -> None:
        """Resolve ``host`` once, here (a name is not looked up again for every datagram)."""
        try:
            family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
        except socket.gaierror as exc:
            raise ValueError(f"cannot resolve UDP destination {host}:{port}: {exc}") from None
        self.address = address
        self._socket = socket.socket(family, kind, proto)
        self._socket.setblocking(False)
        self.sent = 0
        self.dropped = 0

    def send(self, datagram: bytes) -> None:
        try:
            self._socket.sendto(datagram, self.address)
            self.sent += 1
        except BlockingIOError:
            self.dropped += 1

    def close(self) -> None:
        self._socket.close()
