"""A Bloom filter: "seen before?" over millions of keys in a fixed amount of memory.

The import uses it where an exact set would grow with the file (licence numbers seen by the scan,
identifiers claimed during a run). A "maybe" is always confirmed some exact way by the caller, so a
false positive costs time, never correctness.
"""

from __future__ import annotations

__all__ = ["BloomFilter"]


class BloomFilter:
    """``2**bits_log2`` bits, two probes. 2**27 bits (16 MiB) keep false positives near 2e-4 for
    a million keys and about 2 % for ten million: the filter degrades gently, never fails."""

    __slots__ = ("_bits", "_mask")

    def __init__(self, bits_log2: int = 27) -> None:
        if not 6 <= bits_log2 <= 32:
            raise ValueError("bits_log2 must be between 6 and 32")
        self._bits = bytearray(1 << (bits_log2 - 3))
        self._mask = (1 << bits_log2) - 1

    def to_bytes(self) -> bytes:
        """The filter's bits, to hand it to another process (`from_bytes`)."""
        return bytes(self._bits)

    @classmethod
    def from_bytes(cls, bits: bytes) -> BloomFilter:
        """The filter whose bits are ``bits`` (from `to_bytes`): for `add_number`'s keys, in any
        process; for `add`'s, in one with the same hash salt (a forked child's)."""
        size = len(bits) * 8
        if size & (size - 1) or not 64 <= size <= 1 << 32:
            raise ValueError("not the bits of a BloomFilter")
        bloom = cls(size.bit_length() - 1)
        bloom._bits[:] = bits
        return bloom

    # Two probes from the two halves of one 64-bit hash. That needs a hash whose 64 bits are all
    # mixed, which str and bytes have (SipHash, salted per process: fine for a filter that never
    # leaves its process or its forks) and ints and tuples do not: a tuple of a string and a counter
    # gave up to 60 times the expected false positives. Hence keys are str or bytes only here, and
    # ints go to `add_number`. Written out in both methods: add() runs once per licence of a
    # multi-million-row file.
    def add(self, key: str | bytes) -> bool:
        """Add ``key``; return whether it may have been added before (False: certainly not)."""
        h = hash(key)
        a, b = h & self._mask, (h >> 32) & self._mask
        bits = self._bits
        byte_a, bit_a, byte_b, bit_b = a >> 3, 1 << (a & 7), b >> 3, 1 << (b & 7)
        seen = bool(bits[byte_a] & bit_a and bits[byte_b] & bit_b)
        bits[byte_a] |= bit_a
        bits[byte_b] |= bit_b
        return seen

    def __contains__(self, key: str | bytes) -> bool:
        h = hash(key)
        a, b = h & self._mask, (h >> 32) & self._mask
        bits = self._bits
        return bool(bits[a >> 3] & (1 << (a & 7)) and bits[b >> 3] & (1 << (b & 7)))

    # Numbers (licence numbers: 12 digits) are probed from a multiplicative hash of their own,
    # which is the same in every process and every run, where str's hash is salted per process.
    # Where a false "seen" decides something the caller cannot undo (the scan sets a licence aside,
    # and a licence set aside is applied last), the outcome then depends on the file alone. Written
    # out like `add` and `__contains__`, for the same reason: the scan calls them once per run.
    def add_number(self, number: int) -> bool:
        """`add` for a non-negative integer key."""
        h = (number * _FIBONACCI) & _WORD
        a, b = (h >> 32) & self._mask, (h >> 7) & self._mask
        bits = self._bits
        byte_a, bit_a, byte_b, bit_b = a >> 3, 1 << (a & 7), b >> 3, 1 << (b & 7)
        seen = bool(bits[byte_a] & bit_a and bits[byte_b] & bit_b)
        bits[byte_a] |= bit_a
        bits[byte_b] |= bit_b
        return seen

    def has_number(self, number: int) -> bool:
        """`in` for a key given to `add_number`."""
        h = (number * _FIBONACCI) & _WORD
        a, b = (h >> 32) & self._mask, (h >> 7) & self._mask
        bits = self._bits
        return bool(bits[a >> 3] & (1 << (a & 7)) and bits[b >> 3] & (1 << (b & 7)))


# 2**64 divided by the golden ratio, made odd (Knuth's multiplicative hashing): consecutive numbers,
# as licence numbers often are, land far apart in every bit range the probes take.
_FIBONACCI = 0x9E3779B97F4A7C15
_WORD = (1 << 64) - 1
