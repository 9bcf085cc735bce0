// Where a photo was taken, from its EXIF GPS position, read in the browser (the photo is not sent anywhere for
// it): the report's place step is filled from it when a photo comes first (map.js). JPEG (APP1 "Exif"), PNG
// (eXIf chunk) and WebP (EXIF chunk). Only the file's first READ_LIMIT bytes are read; every offset is checked
// against them, so a malformed or hostile EXIF block gives "no position", never an error or a hang. The server
// keeps none of it: complaints.photos re-encodes every stored photo without EXIF.
(function () {
  "use strict";

  var READ_LIMIT = 512 * 1024;
  var MAX_ENTRIES = 1000;  // entries read in one IFD; a TIFF IFD's count is 16 bits, a real one has few

  function ascii(view, at, n) {
    var s = "";
    for (var i = 0; i < n; i++) s += String.fromCharCode(view.getUint8(at + i));
    return s;
  }

  // The TIFF block (a DataView over it) inside an image file's bytes, or null.
  function tiffBlock(view) {
    var n = view.byteLength;
    if (n >= 4 && view.getUint16(0) === 0xFFD8) {  // JPEG: the segments before the image data
      var at = 2;
      while (at + 4 <= n) {
        if (view.getUint8(at) !== 0xFF) return null;
        var marker = view.getUint8(at + 1);
        if (marker === 0xFF) { at += 1; continue; }  // fill byte
        if (marker === 0xD9 || marker === 0xDA) return null;  // end of image, start of scan: no EXIF before it
        if (marker === 0x01 || (marker >= 0xD0 && marker <= 0xD7)) { at += 2; continue; }  // no length
        var length = view.getUint16(at + 2);
        if (length < 2 || at + 2 + length > n) return null;
        if (marker === 0xE1 && length >= 8 && ascii(view, at + 4, 4) === "Exif" && view.getUint16(at + 8) === 0) {
          return new DataView(view.buffer, view.byteOffset + at + 10, length - 8);
        }
        at += 2 + length;
      }
      return null;
    }
    if (n >= 8 && view.getUint32(0) === 0x89504E47 && view.getUint32(4) === 0x0D0A1A0A) {  // PNG: its chunks
      var p = 8;
      while (p + 8 <= n) {
        var size = view.getUint32(p), type = ascii(view, p + 4, 4);
        if (p + 12 + size > n) return null;
        if (type === "eXIf") return new DataView(view.buffer, view.byteOffset + p + 8, size);
        if (type === "IDAT" || type === "IEND") return null;
        p += 12 + size;
      }
      return null;
    }
    if (n >= 12 && ascii(view, 0, 4) === "RIFF" && ascii(view, 8, 4) === "WEBP") {  // WebP: RIFF chunks
      var w = 12;
      while (w + 8 <= n) {
        var fourcc = ascii(view, w, 4), len = view.getUint32(w + 4, true);
        if (w + 8 + len > n) return null;
        if (fourcc === "EXIF") {
          var start = w + 8;  // some writers keep JPEG's "Exif\0\0" in front of the TIFF header
          if (len >= 6 && ascii(view, start, 4) === "Exif" && view.getUint16(start + 4) === 0) {
            start += 6; len -= 6;
          }
          return new DataView(view.buffer, view.byteOffset + start, len);
        }
        w += 8 + len + (len % 2);
      }
    }
    return null;
  }

  // The GPS IFD's tags that matter ({ref, value} by tag number), read from a TIFF block, or null.
  function gpsPosition(tiff) {
    var n = tiff.byteLength;
    if (n < 8) return null;
    var order = ascii(tiff, 0, 2);
    if (order !== "II" && order !== "MM") return null;
    var le = order === "II";
    if (tiff.getUint16(2, le) !== 42) return null;
    var u16 = function (at) { return tiff.getUint16(at, le); };
    var u32 = function (at) { return tiff.getUint32(at, le); };

    // The entries of the IFD at `offset`: {tag: [type, count, where its value is]}.
    function entries(offset) {
      if (offset < 8 || offset + 2 > n) return null;
      var count = Math.min(u16(offset), MAX_ENTRIES), found = {};
      for (var i = 0; i < count; i++) {
        var e = offset + 2 + i * 12;
        if (e + 12 > n) return null;
        var type = u16(e + 2), items = u32(e + 4);
        var size = ({1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 7: 1, 9: 4, 10: 8}[type] || 0) * items;
        var at = size <= 4 ? e + 8 : u32(e + 8);
        if (!size || at + size > n) continue;  // an entry of an unknown type or that points outside: skipped
        found[u16(e)] = {type: type, count: items, at: at};
      }
      return found;
    }

    var ifd0 = entries(u32(4));
    var pointer = ifd0 && ifd0[0x8825];
    if (!pointer || pointer.type !== 4 || pointer.count !== 1) return null;
    var gps = entries(u32(pointer.at));
    if (!gps) return null;

    function ref(tag) {
      var e = gps[tag];
      return e && e.type === 2 && e.count >= 1 ? String.fromCharCode(tiff.getUint8(e.at)).toUpperCase() : "";
    }
    function degrees(tag) {  // three RATIONALs: degrees, minutes, seconds
      var e = gps[tag];
      if (!e || e.type !== 5 || e.count !== 3) return NaN;
      var parts = [0, 1, 2].map(function (k) {
        var num = u32(e.at + 8 * k), den = u32(e.at + 8 * k + 4);
        return den ? num / den : NaN;
      });
      if (!(parts[1] < 60 && parts[2] < 60)) return NaN;
      return parts[0] + parts[1] / 60 + parts[2] / 3600;
    }
    var latRef = ref(1), lonRef = ref(3), lat = degrees(2), lon = degrees(4);
    if ("NS".indexOf(latRef) < 0 || "EW".indexOf(lonRef) < 0 || !latRef || !lonRef) return null;
    if (ref(9) === "V") return null;  // GPSStatus "void": the receiver had no fix
    if (!isFinite(lat) || !isFinite(lon) || lat > 90 || lon > 180 || (lat === 0 && lon === 0)) return null;
    return {lat: latRef === "S" ? -lat : lat, lon: lonRef === "W" ? -lon : lon};
  }

  // {lat, lon} of the bytes of an image file, or null when it carries no usable GPS position.
  function fromBytes(buffer) {
    try {
      var tiff = tiffBlock(new DataView(buffer));
      return tiff ? gpsPosition(tiff) : null;
    } catch (e) {
      return null;  // a RangeError from a check missed above: still "no position"
    }
  }

  // A promise of {lat, lon} or null for a File.
  function fromFile(file) {
    if (!file || typeof file.slice !== "function") return Promise.resolve(null);
    return file.slice(0, READ_LIMIT).arrayBuffer().then(fromBytes, function () { return null; });
  }

  // The first of these files that carries a position: a promise of {lat, lon} or null.
  function fromFiles(files) {
    var list = Array.prototype.slice.call(files || []);
    return list.reduce(function (found, file) {
      return found.then(function (place) { return place || fromFile(file); });
    }, Promise.resolve(null));
  }

  window.OurCityPhotoPlace = {fromBytes: fromBytes, fromFile: fromFile, fromFiles: fromFiles};
})();
