"""``python -m tests.fuzz.seeds``: (re)write the hand-made seeds of the fuzz corpus, one file per input.

Valid inputs of every kind, and the bad ones issue 13 found, so that the
fuzzer starts from both sides of every check. Inputs the fuzzer finds and
that are worth keeping are copied into the same folders by hand.
"""

import hashlib
import json

from tests.fuzz.targets import CORPUS, encode_session

HELLO = json.dumps({"type": "hello", "version": 1, "sample_rate_hz": 16000, "sample_format": "s16le", "channels": 1})
OFFER = """v=0\r
o=- 3950000000 3950000000 IN IP4 0.0.0.0\r
s=-\r
t=0 0\r
a=group:BUNDLE 0 1 2\r
a=msid-semantic:WMS *\r
m=audio 9 UDP/TLS/RTP/SAVPF 96 0 8\r
c=IN IP4 0.0.0.0\r
a=sendrecv\r
a=mid:0\r
a=msid:a b\r
a=rtcp:9 IN IP4 0.0.0.0\r
a=rtcp-mux\r
a=ssrc:1 cname:x\r
a=rtpmap:96 opus/48000/2\r
a=rtpmap:0 PCMU/8000\r
a=rtpmap:8 PCMA/8000\r
a=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host\r
a=end-of-candidates\r
a=ice-ufrag:abcd\r
a=ice-pwd:abcdefghijklmnopqrstuvwx\r
a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r
a=setup:actpass\r
m=video 9 UDP/TLS/RTP/SAVPF 97\r
c=IN IP4 0.0.0.0\r
a=recvonly\r
a=mid:1\r
a=rtcp-mux\r
a=rtpmap:97 VP8/90000\r
a=ice-ufrag:abcd\r
a=ice-pwd:abcdefghijklmnopqrstuvwx\r
a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r
a=setup:actpass\r
m=application 9 DTLS/SCTP 5000\r
c=IN IP4 0.0.0.0\r
a=mid:2\r
a=sctpmap:5000 webrtc-datachannel 65535\r
a=max-message-size:65536\r
a=ice-ufrag:abcd\r
a=ice-pwd:abcdefghijklmnopqrstuvwx\r
a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r
a=setup:actpass\r
"""

SEEDS: dict[str, list[bytes]] = {
    "websocket": [
        encode_session([HELLO, bytes(640), bytes(640), '{"type": "end"}']),
        encode_session(
            [
                json.dumps({"type": "hello", "version": 1, "sample_format": "f32le", "channels": 2}),
                b"\x00\x00\x80\x3f" * 8,
                '{"type": "end"}',
                b"\x00\x00",
            ]
        ),  # fmt: skip
        encode_session([HELLO, b"", b"\x00", '{"type": "audio"}']),
        encode_session([b"\x00\x00", HELLO]),
        encode_session([json.dumps({"type": "hello", "version": 1, "sample_format": ["s16le"]})]),
        encode_session([HELLO, bytes(641)]),
    ],
    "hello": [
        HELLO.encode(),
        json.dumps(
            {
                "type": "hello",
                "version": 1,
                "fps": 30,
                "outputs": ["aus", "blendshapes", "frames"],
                "encoding": "json",
                "sample_rate_hz": 48000,
                "channels": 2,
            }
        ).encode(),  # fmt: skip
        json.dumps({"type": "hello", "version": 1, "sample_format": {}}).encode(),
        json.dumps({"type": "hello", "version": 1, "outputs": [{}]}).encode(),
        json.dumps({"type": "hello", "version": 2}).encode(),
        b'{"type": "hello", "version": 1, "x": ' + b"[" * 2000 + b"]" * 2000 + b"}",
        b"hello, server",
    ],
    "offer": [
        OFFER.encode(),
        json.dumps({"sdp": OFFER, "type": "offer", "voice": True}).encode(),
        OFFER.replace("a=fingerprint", "a=x-fingerprint").encode(),
        b"v=0\r\nm=audio x\r\n",
        b"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF opus\r\n",
        b"[" * 3000 + b"]" * 3000,
    ],
    "control": [
        json.dumps({"type": "expression", "bias": {"AU12": 2.0}, "gain": {"AU04": 0.5}}).encode(),
        json.dumps({"type": "expression", "reset": True, "bias": {"AU01": 9.0}}).encode(),
        json.dumps({"type": "expression", "bias": {"AU99": 1.0}}).encode(),
        json.dumps({"type": "expression", "gain": {"AU12": float("nan")}}).encode(),
        b'{"type": "stats"}',
        b"[" * 3000 + b"]" * 3000,
    ],
    "headers": [
        b"Bearer fuzz-access-token-0123456789\n\n\n127.0.0.1:8080\nhttp://127.0.0.1:8080",
        b"\nfuzz-access-token-0123456789\n\nattacker.example\nhttp://attacker.example",
        b"\n\navatar.v1, bearer.eyJhbGciOiJIUzI1NiJ9.e30.x\n[::1]:8080\nnull",
        b"Basic abc\n\n\navatar.lan\nhttps://app.example",
    ],
}


def main() -> None:
    for target, inputs in SEEDS.items():
        folder = CORPUS / target
        folder.mkdir(parents=True, exist_ok=True)
        for data in inputs:
            (folder / f"seed-{hashlib.sha1(data).hexdigest()[:12]}").write_bytes(data)
    print(f"wrote the seeds under {CORPUS}")


if __name__ == "__main__":
    main()
