"""A small Mapbox Vector Tile (protobuf) reader for the tests: layers -> features with properties and points.

Only what our tiles hold: point features with string and integer properties (spec: github.com/mapbox/vector-tile-spec).
"""
import struct


def _varint(buf, i):
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def _fields(buf):
    """(field number, wire type, value) of a message; length-delimited values come as bytes."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 2:
            size, i = _varint(buf, i)
            value, i = buf[i:i + size], i + size
        elif wire == 1:
            value, i = buf[i:i + 8], i + 8
        elif wire == 5:
            value, i = buf[i:i + 4], i + 4
        else:
            raise ValueError(f"wire type {wire}")
        yield number, wire, value


def _packed(buf):
    out, i = [], 0
    while i < len(buf):
        v, i = _varint(buf, i)
        out.append(v)
    return out


def _zigzag(n):
    return (n >> 1) ^ -(n & 1)


def _value(buf):
    for number, _wire, value in _fields(buf):
        if number == 1:
            return value.decode()
        if number in (4, 5):
            return value if value < 2 ** 63 else value - 2 ** 64
        if number == 6:
            return _zigzag(value)
        if number == 7:
            return bool(value)
        return struct.unpack("<d" if number == 3 else "<f", value)[0]


def _points(geometry):
    """The points of a POINT feature's command stream, in tile coordinates."""
    points, x, y, i = [], 0, 0, 0
    while i < len(geometry):
        command, count = geometry[i] & 7, geometry[i] >> 3
        i += 1
        assert command == 1, "only MoveTo (points) is expected"
        for _ in range(count):
            x, y = x + _zigzag(geometry[i]), y + _zigzag(geometry[i + 1])
            points.append((x, y))
            i += 2
    return points


def decode(data):
    """{layer name: {"extent": int, "features": [{"properties": {...}, "points": [(x, y)]}]}}"""
    layers = {}
    for number, _wire, layer_buf in _fields(bytes(data)):
        if number != 3:
            continue
        name, keys, values, raw_features, extent = None, [], [], [], 4096
        for n, _w, v in _fields(layer_buf):
            if n == 1:
                name = v.decode()
            elif n == 2:
                raw_features.append(v)
            elif n == 3:
                keys.append(v.decode())
            elif n == 4:
                values.append(_value(v))
            elif n == 5:
                extent = v
        features = []
        for raw in raw_features:
            tags, geometry = [], []
            for n, _w, v in _fields(raw):
                if n == 2:
                    tags = _packed(v)
                elif n == 4:
                    geometry = _packed(v)
            props = {keys[tags[k]]: values[tags[k + 1]] for k in range(0, len(tags), 2)}
            features.append({"properties": props, "points": _points(geometry)})
        layers[name] = {"extent": extent, "features": features}
    return layers
