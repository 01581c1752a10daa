"""SPDY/3.1 framing, as kubectl port-forward speaks it (``portforward.k8s.io``).

Kubernetes still multiplexes port-forward streams with SPDY/3.1 (moby/spdystream), carried
either over a WebSocket (``SPDY/3.1+portforward.k8s.io``: binary messages form one
continuous byte stream) or over a raw upgraded HTTP connection.  This module is the frame
codec only: :class:`FrameParser` turns bytes into frames (whatever the chunking),
``encode_*`` build frames, :class:`HeaderCodec` keeps the two zlib contexts (one per
direction for the whole connection, preset with the SPDY/3 dictionary, ``Z_SYNC_FLUSH``
after every block).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
MAX_LENGTH = (1 << 24) - 1
# RST_STREAM status codes
PROTOCOL_ERROR, INVALID_STREAM, REFUSED_STREAM, CANCEL, INTERNAL_ERROR = 1, 2, 3, 5, 6

_WORDS = [
    "options",
    "head",
    "post",
    "put",
    "delete",
    "trace",
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "age",
    "allow",
    "authorization",
    "cache-control",
    "connection",
    "content-base",
    "content-encoding",
    "content-language",
    "content-length",
    "content-location",
    "content-md5",
    "content-range",
    "content-type",
    "date",
    "etag",
    "expect",
    "expires",
    "from",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "last-modified",
    "location",
    "max-forwards",
    "pragma",
    "proxy-authenticate",
    "proxy-authorization",
    "range",
    "referer",
    "retry-after",
    "server",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "vary",
    "via",
    "warning",
    "www-authenticate",
    "method",
    "get",
    "status",
    "200 OK",
    "version",
    "HTTP/1.1",
    "url",
    "public",
    "set-cookie",
    "keep-alive",
    "origin",
]
_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request"
    "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented"
    "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 "
    "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,"
    "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age="
    "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)
# The SPDY/3 header-compression dictionary (draft 3, section 2.6.10.1): length-prefixed header
# names and common values, then a run of common text.  1423 bytes.
DICTIONARY = b"".join(struct.pack(">I", len(w)) + w.encode() for w in _WORDS) + _TAIL.encode()


class ProtocolError(ValueError):
    """Bytes that are not valid SPDY/3 (the connection should be dropped with GOAWAY)."""


@dataclass
class ControlFrame:
    type: int
    flags: int
    payload: bytes


@dataclass
class DataFrame:
    stream_id: int
    flags: int
    data: bytes

    @property
    def fin(self) -> bool:
        return bool(self.flags & FLAG_FIN)


Frame = ControlFrame | DataFrame


@dataclass
class FrameParser:
    """Incremental: ``feed`` any chunk of the byte stream, get the complete frames back."""

    buffer: bytearray = field(default_factory=bytearray)

    def feed(self, chunk: bytes) -> list[Frame]:
        self.buffer.extend(chunk)
        frames: list[Frame] = []
        while len(self.buffer) >= 8:
            length = int.from_bytes(self.buffer[5:8], "big")
            if len(self.buffer) < 8 + length:
                break
            head = bytes(self.buffer[:8])
            payload = bytes(self.buffer[8 : 8 + length])
            del self.buffer[: 8 + length]
            frames.append(_frame(head, payload))
        return frames


def _frame(head: bytes, payload: bytes) -> Frame:
    flags = head[4]
    if head[0] & 0x80:
        version = struct.unpack(">H", head[0:2])[0] & 0x7FFF
        if version != VERSION:
            raise ProtocolError(f"unsupported SPDY version {version}")
        return ControlFrame(struct.unpack(">H", head[2:4])[0], flags, payload)
    return DataFrame(struct.unpack(">I", head[0:4])[0] & 0x7FFFFFFF, flags, payload)


def _control(type_: int, flags: int, payload: bytes) -> bytes:
    if len(payload) > MAX_LENGTH:
        raise ProtocolError("frame too large")
    return struct.pack(">HHB", 0x8000 | VERSION, type_, flags) + len(payload).to_bytes(3, "big") + payload


def encode_data(stream_id: int, data: bytes, fin: bool = False) -> bytes:
    if not 0 < stream_id < 1 << 31:
        raise ProtocolError(f"invalid stream id {stream_id}")
    if len(data) > MAX_LENGTH:
        raise ProtocolError("frame too large")
    flags = FLAG_FIN if fin else 0
    return struct.pack(">IB", stream_id, flags) + len(data).to_bytes(3, "big") + data


def encode_syn_stream(stream_id: int, header_block: bytes, fin: bool = False) -> bytes:
    payload = struct.pack(">IIH", stream_id, 0, 0) + header_block
    return _control(SYN_STREAM, FLAG_FIN if fin else 0, payload)


def encode_syn_reply(stream_id: int, header_block: bytes, fin: bool = False) -> bytes:
    return _control(SYN_REPLY, FLAG_FIN if fin else 0, struct.pack(">I", stream_id) + header_block)


def encode_rst_stream(stream_id: int, status: int) -> bytes:
    return _control(RST_STREAM, 0, struct.pack(">II", stream_id, status))


def encode_ping(ping_id: int) -> bytes:
    return _control(PING, 0, struct.pack(">I", ping_id))


def encode_goaway(last_stream_id: int, status: int = 0) -> bytes:
    return _control(GOAWAY, 0, struct.pack(">II", last_stream_id, status))


def encode_window_update(stream_id: int, delta: int) -> bytes:
    return _control(WINDOW_UPDATE, 0, struct.pack(">II", stream_id, delta))


@dataclass(frozen=True)
class SynStream:
    stream_id: int
    associated_id: int
    fin: bool
    header_block: bytes


def parse_syn_stream(f: ControlFrame) -> SynStream:
    if len(f.payload) < 10:
        raise ProtocolError("SYN_STREAM too short")
    sid, assoc = struct.unpack(">II", f.payload[:8])
    return SynStream(sid & 0x7FFFFFFF, assoc & 0x7FFFFFFF, bool(f.flags & FLAG_FIN), f.payload[10:])


def parse_stream_id(f: ControlFrame) -> int:
    """The stream id that starts SYN_REPLY, RST_STREAM, HEADERS and WINDOW_UPDATE payloads."""
    if len(f.payload) < 4:
        raise ProtocolError("control frame too short")
    return int(struct.unpack(">I", f.payload[:4])[0]) & 0x7FFFFFFF


def pack_headers(headers: dict[str, str]) -> bytes:
    """The uncompressed name/value block (names lowercased, as SPDY/3 requires)."""
    out = [struct.pack(">I", len(headers))]
    for name, value in headers.items():
        n, v = name.lower().encode(), value.encode()
        out.append(struct.pack(">I", len(n)) + n + struct.pack(">I", len(v)) + v)
    return b"".join(out)


def unpack_headers(block: bytes) -> dict[str, str]:
    """Parse an uncompressed block; repeated values (NUL-separated) keep the first."""
    try:
        count = struct.unpack(">I", block[:4])[0]
        pos, out = 4, {}
        for _ in range(count):
            nlen = struct.unpack(">I", block[pos : pos + 4])[0]
            name = block[pos + 4 : pos + 4 + nlen].decode()
            pos += 4 + nlen
            vlen = struct.unpack(">I", block[pos : pos + 4])[0]
            value = block[pos + 4 : pos + 4 + vlen].decode()
            pos += 4 + vlen
            out[name] = value.split("\x00")[0]
    except (struct.error, UnicodeDecodeError) as e:
        raise ProtocolError("malformed header block") from e
    if pos != len(block):
        raise ProtocolError("trailing bytes after the header block")
    return out


class HeaderCodec:
    """One compression context per direction for the whole connection."""

    def __init__(self) -> None:
        self._deflate = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 15, 8, zdict=DICTIONARY)
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)

    def compress(self, headers: dict[str, str]) -> bytes:
        block = pack_headers(headers)
        return self._deflate.compress(block) + self._deflate.flush(zlib.Z_SYNC_FLUSH)

    def decompress(self, data: bytes) -> dict[str, str]:
        if not data:
            return {}
        try:
            block = self._inflate.decompress(data)
        except zlib.error as e:
            raise ProtocolError(f"header block does not decompress: {e}") from e
        return unpack_headers(block)
