"""A tiny reader for the BER/DER subset that module signatures use.

Only what the PKCS#7 parser in :mod:`lkm.signature` needs: tag-length-value walking (definite,
non-minimal and indefinite lengths, because kmod reads signatures with a BER-tolerant decoder),
children of constructed values, string contents (constructed strings are concatenated), and
INTEGER and OBJECT IDENTIFIER decoding with the strictness that decoder applies. Offsets are
into the buffer handed in; errors add the buffer's file offset, so they point at file bytes.
"""

from __future__ import annotations

from lkm.errors import SignatureError
from lkm.typing_lite import NamedTuple

# Identifier octet bits (X.690 8.1.2).
CLASS_UNIVERSAL = 0x00
CLASS_CONTEXT = 0x80
CONSTRUCTED = 0x20

TAG_EOC = 0
TAG_BOOLEAN = 1
TAG_INTEGER = 2
TAG_BIT_STRING = 3
TAG_OCTET_STRING = 4
TAG_OID = 6
TAG_SEQUENCE = 16
TAG_SET = 17

# Nesting bound for indefinite-length scanning: real signatures nest about ten levels deep.
_MAX_DEPTH = 64


class Tlv(NamedTuple):
    """One encoded value: where it sits in the buffer and what its identifier says."""

    cls: int  # CLASS_* bits (0x00, 0x40, 0x80, 0xC0)
    constructed: bool
    number: int  # tag number within the class
    start: int  # offset of the identifier octet
    content_start: int
    content_end: int  # exclusive; for indefinite lengths, the end-of-contents octets follow
    end: int  # exclusive end of the whole encoding

    def is_universal(self, number: int, *, constructed: bool | None = None) -> bool:
        if self.cls != CLASS_UNIVERSAL or self.number != number:
            return False
        return constructed is None or self.constructed == constructed

    def is_context(self, number: int) -> bool:
        return self.cls == CLASS_CONTEXT and self.number == number


class DerReader(NamedTuple):
    """Reads values out of ``data``; ``path`` only decorates error messages."""

    data: bytes
    path: str | None = None
    base: int = 0  # file offset of data[0], added to offsets in error messages

    def error(self, message: str, offset: int) -> SignatureError:
        return SignatureError(message, path=self.path, offset=self.base + offset)

    def read(self, offset: int, end: int, *, depth: int = 0) -> Tlv:
        """Decode the value starting at ``offset``, which must end at or before ``end``."""
        if depth > _MAX_DEPTH:
            raise self.error(f"expected at most {_MAX_DEPTH} nested values, found more", offset)
        start = offset
        if offset >= end:
            raise self.error("expected an ASN.1 value, found the end of the data", offset)
        ident = self.data[offset]
        offset += 1
        number = ident & 0x1F
        if number == 0x1F:
            number = 0
            while True:
                if offset >= end:
                    raise self.error("expected more tag octets, found the end of the data", offset)
                octet = self.data[offset]
                offset += 1
                number = (number << 7) | (octet & 0x7F)
                if not octet & 0x80:
                    break
                if number > 0xFFFFFF:
                    raise self.error("expected a tag number below 2**24, found a larger one", start)
        if offset >= end:
            raise self.error("expected a length octet, found the end of the data", offset)
        first = self.data[offset]
        offset += 1
        constructed = bool(ident & CONSTRUCTED)
        cls = ident & 0xC0
        if first == 0x80:
            if not constructed:
                raise self.error("expected a definite length on a primitive value", start)
            content_end = self._scan_indefinite(offset, end, depth)
            return Tlv(cls, constructed, number, start, offset, content_end, content_end + 2)
        if first == 0xFF:
            raise self.error("expected a length octet, found the reserved value 0xff", offset - 1)
        length = first
        if first & 0x80:
            count = first & 0x7F
            if offset + count > end:
                raise self.error("expected length octets, found the end of the data", offset)
            length = int.from_bytes(self.data[offset : offset + count], "big")
            offset += count
        if offset + length > end:
            raise self.error(
                f"expected {length} content bytes, found only {end - offset} before the end",
                start,
            )
        return Tlv(cls, constructed, number, start, offset, offset + length, offset + length)

    def _scan_indefinite(self, offset: int, end: int, depth: int) -> int:
        """Return the offset of the end-of-contents octets closing a value opened at ``offset``."""
        while True:
            if offset + 2 <= end and self.data[offset] == 0 and self.data[offset + 1] == 0:
                return offset
            offset = self.read(offset, end, depth=depth + 1).end

    def children(self, tlv: Tlv) -> tuple[Tlv, ...]:
        """The values inside a constructed value, in order."""
        if not tlv.constructed:
            raise self.error("expected a constructed value, found a primitive one", tlv.start)
        return self.members(tlv)

    def members(self, tlv: Tlv) -> tuple[Tlv, ...]:
        """The values inside ``tlv`` even when its identifier says primitive: kmod's decoder
        reads a SET OF or SEQUENCE OF that way."""
        items = []
        offset = tlv.content_start
        while offset < tlv.content_end:
            item = self.read(offset, tlv.content_end)
            items.append(item)
            offset = item.end
        return tuple(items)

    def content(self, tlv: Tlv, *, depth: int = 0) -> bytes:
        """The content octets; a constructed (BER) string is the concatenation of its pieces.

        Like kmod's decoder, the pieces' own tags are not checked, but an end-of-contents
        value among them (outside an indefinite length) is an error.
        """
        if not tlv.constructed:
            return self.data[tlv.content_start : tlv.content_end]
        if depth > _MAX_DEPTH:
            raise self.error(f"expected at most {_MAX_DEPTH} nested strings", tlv.start)
        pieces = []
        for child in self.children(tlv):
            if child.cls == CLASS_UNIVERSAL and child.number == TAG_EOC:
                raise self.error("expected a string piece, found end-of-contents", child.start)
            pieces.append(self.content(child, depth=depth + 1))
        return b"".join(pieces)

    def expect(self, tlv: Tlv, number: int, what: str, *, constructed: bool | None = None) -> None:
        if not tlv.is_universal(number, constructed=constructed):
            raise self.error(
                f"expected {what} (universal tag {number}), found class {tlv.cls:#x} "
                f"tag {tlv.number}",
                tlv.start,
            )

    def integer(self, tlv: Tlv) -> int:
        """A minimally encoded INTEGER; padded or empty encodings are rejected, as kmod's
        decoder does."""
        self.expect(tlv, TAG_INTEGER, "an INTEGER", constructed=False)
        raw = self.content(tlv)
        if not raw:
            raise self.error("expected INTEGER content, found none", tlv.start)
        if len(raw) > 1 and (
            (raw[0] == 0x00 and raw[1] < 0x80) or (raw[0] == 0xFF and raw[1] >= 0x80)
        ):
            raise self.error("expected a minimal INTEGER encoding, found padding", tlv.start)
        return int.from_bytes(raw, "big", signed=True)

    def oid(self, tlv: Tlv) -> str:
        """An OBJECT IDENTIFIER in dotted form."""
        self.expect(tlv, TAG_OID, "an OBJECT IDENTIFIER", constructed=False)
        raw = self.content(tlv)
        if not raw or raw[-1] & 0x80:
            raise self.error("expected a complete OBJECT IDENTIFIER, found a cut one", tlv.start)
        arcs: list[int] = []
        value = 0
        fresh = True
        for octet in raw:
            if fresh and octet == 0x80:
                raise self.error("expected a minimal OID sub-identifier, found padding", tlv.start)
            value = (value << 7) | (octet & 0x7F)
            fresh = not octet & 0x80
            if fresh:
                arcs.append(value)
                value = 0
        first = arcs[0]
        head = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
        return ".".join(str(arc) for arc in head + arcs[1:])
