#!/usr/bin/env python3
"""Checks that a file is a well-formed baseline JPEG, without any imaging library.

Walks the marker segments (SOI, APPn, DQT, SOF0, DHT, SOS, EOI), then Huffman-
decodes the whole scan, so a frame that only *looks* like a JPEG (right
markers, broken entropy data) is caught too. Returns the image size, the
components, the DPFK header the fake camera puts in APP4, and the DC value of
every luma block, which is enough to check the fake's gradient pattern.

    python3 jpeg_walk.py FILE...      one JSON line per file; exit 1 if any is invalid
"""
import json
import struct
import sys


class JpegError(ValueError):
    pass


def _build_huffman(bits, vals):
    table = {}
    code = 0
    k = 0
    for length in range(1, 17):
        for _ in range(bits[length - 1]):
            table[(length, code)] = vals[k]
            k += 1
            code += 1
        code <<= 1
    if k != len(vals):
        raise JpegError("DHT value count does not match its code lengths")
    return table


class _BitReader:
    def __init__(self, data, pos, end):
        self.data, self.pos, self.end = data, pos, end
        self.acc = 0
        self.n = 0

    def bit(self):
        if self.n == 0:
            if self.pos >= self.end:
                raise JpegError("entropy data runs past EOI")
            b = self.data[self.pos]
            self.pos += 1
            if b == 0xFF:
                nxt = self.data[self.pos] if self.pos < self.end else None
                if nxt != 0x00:
                    raise JpegError("marker 0xFF%02X inside scan data" % (nxt or 0))
                self.pos += 1
            self.acc, self.n = b, 8
        self.n -= 1
        return (self.acc >> self.n) & 1

    def bits(self, count):
        v = 0
        for _ in range(count):
            v = (v << 1) | self.bit()
        return v

    def huff(self, table):
        code = 0
        for length in range(1, 17):
            code = (code << 1) | self.bit()
            sym = table.get((length, code))
            if sym is not None:
                return sym
        raise JpegError("invalid Huffman code")


def _extend(v, size):
    return v - (1 << size) + 1 if size and v < (1 << (size - 1)) else v


def parse_dpfk(payload):
    if len(payload) < 32 or payload[:4] != b"DPFK":
        return None
    seq, ns, fourcc, w, h, nbytes, ver, drops = struct.unpack_from("<IQIHHIHH", payload, 4)
    return {
        "seq": seq, "ns": ns, "fourcc": struct.pack("<I", fourcc).decode("latin-1"),
        "width": w, "height": h, "bytes": nbytes, "version": ver, "drops": drops,
    }


def walk(data, decode=True):
    if data[:2] != b"\xff\xd8":
        raise JpegError("no SOI")
    pos = 2
    qt, dc_tables, ac_tables = {}, {}, {}
    frame = None
    dpfk = None
    dpfk_offset = None
    markers = []
    while True:
        if pos + 4 > len(data):
            raise JpegError("truncated before SOS")
        if data[pos] != 0xFF:
            raise JpegError("expected a marker at %d" % pos)
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        length = struct.unpack_from(">H", data, pos + 2)[0]
        seg = data[pos + 4:pos + 2 + length]
        if length < 2 or len(seg) != length - 2:
            raise JpegError("segment 0x%02X overruns the file" % marker)
        markers.append("%02X" % marker)
        if marker in (0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            raise JpegError("not a baseline JPEG (SOF%d)" % (marker - 0xC0))
        if marker == 0xE4 and seg[:4] == b"DPFK":
            dpfk = parse_dpfk(seg)
            dpfk_offset = pos + 4
        elif marker == 0xDB:
            i = 0
            while i < len(seg):
                pq, tq = seg[i] >> 4, seg[i] & 15
                if pq != 0:
                    raise JpegError("16-bit quantisation table in a baseline JPEG")
                qt[tq] = list(seg[i + 1:i + 65])
                i += 65
        elif marker == 0xC4:
            i = 0
            while i < len(seg):
                tc, th = seg[i] >> 4, seg[i] & 15
                bits = list(seg[i + 1:i + 17])
                n = sum(bits)
                vals = list(seg[i + 17:i + 17 + n])
                (dc_tables if tc == 0 else ac_tables)[th] = _build_huffman(bits, vals)
                i += 17 + n
        elif marker == 0xC0:
            precision, h, w, nf = struct.unpack_from(">BHHB", seg, 0)
            if precision != 8:
                raise JpegError("precision %d" % precision)
            comps = []
            for c in range(nf):
                cid, hv, tq = struct.unpack_from(">BBB", seg, 6 + 3 * c)
                if tq not in qt:
                    raise JpegError("component %d uses an undefined quantisation table" % cid)
                comps.append({"id": cid, "h": hv >> 4, "v": hv & 15, "tq": tq})
            frame = {"width": w, "height": h, "components": comps}
        elif marker == 0xDA:
            if frame is None:
                raise JpegError("SOS before SOF0")
            ns = seg[0]
            scan = []
            for c in range(ns):
                cid, tables = seg[1 + 2 * c], seg[2 + 2 * c]
                comp = next((x for x in frame["components"] if x["id"] == cid), None)
                if comp is None:
                    raise JpegError("SOS names an unknown component")
                if (tables >> 4) not in dc_tables or (tables & 15) not in ac_tables:
                    raise JpegError("SOS uses an undefined Huffman table")
                scan.append((comp, dc_tables[tables >> 4], ac_tables[tables & 15]))
            pos += 2 + length
            break
        elif marker in (0xD9, 0xDA):
            raise JpegError("unexpected marker")
        pos += 2 + length

    if data[-2:] != b"\xff\xd9":
        raise JpegError("does not end with EOI")
    result = {"width": frame["width"], "height": frame["height"],
              "components": [(c["id"], c["h"], c["v"]) for c in frame["components"]],
              "markers": markers, "dpfk": dpfk, "dpfk_offset": dpfk_offset, "size": len(data)}
    if not decode:
        return result

    hmax = max(c["h"] for c in frame["components"])
    vmax = max(c["v"] for c in frame["components"])
    mcux = -(-frame["width"] // (8 * hmax))
    mcuy = -(-frame["height"] // (8 * vmax))
    reader = _BitReader(data, pos, len(data) - 2)
    pred = {}
    luma_id = frame["components"][0]["id"]
    blocks_per_row = mcux * frame["components"][0]["h"]
    luma_dc = {}
    for my in range(mcuy):
        for mx in range(mcux):
            for comp, dct, act in scan:
                for by in range(comp["v"]):
                    for bx in range(comp["h"]):
                        size = reader.huff(dct)
                        if size > 11:
                            raise JpegError("DC category %d" % size)
                        diff = _extend(reader.bits(size), size)
                        dc = pred.get(comp["id"], 0) + diff
                        pred[comp["id"]] = dc
                        k = 1
                        while k < 64:
                            rs = reader.huff(act)
                            run, size = rs >> 4, rs & 15
                            if size == 0:
                                if run == 15:
                                    k += 16
                                    continue
                                break
                            k += run
                            reader.bits(size)
                            k += 1
                        if k > 64:
                            raise JpegError("AC coefficients overrun the block")
                        if comp["id"] == luma_id:
                            gx = mx * comp["h"] + bx
                            gy = my * comp["v"] + by
                            luma_dc[gy * blocks_per_row + gx] = dc * qt[comp["tq"]][0]
    # What is left must be 1-bit padding of the last byte only.
    if reader.n and (reader.acc & ((1 << reader.n) - 1)) != (1 << reader.n) - 1:
        raise JpegError("scan padding is not all ones")
    if reader.pos != len(data) - 2:
        raise JpegError("%d bytes of scan data left over" % (len(data) - 2 - reader.pos))
    result["blocks_per_row"] = blocks_per_row
    result["luma_dc"] = [luma_dc[i] for i in range(len(luma_dc))]
    return result


def main(argv):
    bad = 0
    for path in argv[1:]:
        with open(path, "rb") as f:
            data = f.read()
        try:
            r = walk(data)
            r.pop("luma_dc", None)
            print(json.dumps({"file": path, "ok": True, **r}))
        except (JpegError, IndexError, struct.error) as e:
            bad += 1
            print(json.dumps({"file": path, "ok": False, "error": str(e)}))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
