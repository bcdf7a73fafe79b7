#!/usr/bin/python3
"""Writes the committed hostile-input table: tests/fuzz/corpus/<decoder>/<name>.

Each file is a fuzz seed for that decoder's target and a case of the unit tests
(tests/unit/hostile_input_test.cpp): a name starting with `good-` must decode, `bad-`
must be refused with a reason, `any-` must only be handled without a crash. The table
covers, per decoder: every field with every wrong JSON type, missing fields, null, [],
"", empty input, integers at 2^64-1 and negative, deep nesting, long strings, invalid
UTF-8, duplicate keys, and well-formed documents for a namespace or key that does not
exist. Inputs too large to commit (a 200,000-deep array, a 64 MiB string) are made by
the unit tests themselves.

Deterministic: run it again and `git diff` shows only what the table changed.

    tests/fuzz/make_seeds.py            # rewrites tests/fuzz/corpus/
"""
import base64
import hashlib
import hmac
import json
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus")

# Wrong values for a field, by the type the field wants.
WRONG = {
    "null": None,
    "true": True,
    "false": False,
    "zero": 0,
    "negative": -1,
    "u64max": 18446744073709551615,
    "beyond-u64": 18446744073709551616,
    "i64min": -9223372036854775808,
    "fraction": 1.5,
    "string": "x",
    "empty-string": "",
    "numeric-string": "42",
    "array": [],
    "object": {},
    "nested": [[["x"]]],
}
NUMBER_OK = {"zero", "u64max"}  # valid u64 values: refused or not by range, per field
STRING_OK = {"string", "empty-string", "numeric-string"}

written = {}


def put(decoder, name, data):
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    directory = os.path.join(OUT, decoder)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, name)
    if path in written:
        sys.exit(f"make_seeds: {decoder}/{name} written twice")
    written[path] = True
    with open(path, "wb") as f:
        f.write(data)


def dump(doc):
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


def with_field(doc, field, value):
    out = dict(doc)
    out[field] = value
    return out


def without(doc, field):
    return {k: v for k, v in doc.items() if k != field}


def deep_array(depth):
    return "[" * depth + "]" * depth


def common_json(decoder, good):
    """Inputs every JSON document decoder must refuse."""
    for name, text in {
        "empty": "",
        "null": "null",
        "array": "[]",
        "empty-string": '""',
        "number": "42",
        "garbage": "{not json",
        "trailing-garbage": dump(good) + " x",
        "two-documents": dump(good) + dump(good),
        "deep-array-5000": deep_array(5000),
        "deep-object-5000": '{"a":' * 5000 + "1" + "}" * 5000,
        "nul-byte": dump(good)[:-1] + "\x00}",
    }.items():
        put(decoder, f"bad-{name}", text)
    put(decoder, "bad-invalid-utf8", dump(good)[:-1].encode() + b',"k":"\xff\xfe"}')
    put(decoder, "bad-overlong-utf8", dump(good)[:-1].encode() + b',"k":"\xc0\xaf"}')
    put(decoder, "bad-lone-surrogate", dump(good)[:-1] + ',"k":"\\ud800"}')
    first = next(iter(good))
    dup = dump(good)[:-1] + "," + json.dumps(first) + ":" + json.dumps(good[first]) + "}"
    put(decoder, "bad-duplicate-key", dup)


def field_table(decoder, good, fields, prefix=""):
    """Every field of `fields` (name -> (kind, required)) with every wrong type."""
    for field, (kind, required) in fields.items():
        for wname, wvalue in WRONG.items():
            if kind == "u64" and wname in NUMBER_OK:
                continue
            if kind == "string" and wname in STRING_OK:
                continue
            if kind == "array" and wname == "array":
                continue
            put(decoder, f"bad-{prefix}{field}-{wname}", dump(with_field(good, field, wvalue)))
        missing = dump(without(good, field))
        put(decoder, f"{'bad' if required else 'good'}-{prefix}{field}-missing", missing)


# ---------------------------------------------------------------------------------------
# Batches (pub/sub and stream documents)

ENTRY = {"ns": "config", "key": "embed_model", "op": "U", "value": '"siliconflow/BAAI/bge-m3"',
         "category": "models"}
BATCH = {"v": 1, "revision": 42, "prev": 41, "commit_ns": 1700000000123456789, "fence": 7,
         "entries": [ENTRY]}


def batches():
    put("batch", "good-one-update", dump(BATCH))
    put("batch", "good-wakeup", dump(without(BATCH, "entries")))
    put("batch", "good-delete", dump(with_field(BATCH, "entries", [
        {"ns": "metadata", "key": "global_metadata", "op": "D"}])))
    put("batch", "good-empty-entries", dump(with_field(BATCH, "entries", [])))
    put("batch", "good-key-that-does-not-exist",
        dump(with_field(BATCH, "entries", [{"ns": "config", "key": "no.such.key", "op": "D"}])))
    put("batch", "good-value-not-json-checked-later",
        dump(with_field(BATCH, "entries", [dict(ENTRY, value="{not json")])))
    put("batch", "good-unicode-key",
        dump(with_field(BATCH, "entries", [dict(ENTRY, key="模型.嵌入")])))
    put("batch", "good-unknown-field-ignored", dump(with_field(BATCH, "extra", [1, 2])))
    common_json("batch", BATCH)
    field_table("batch", BATCH, {
        "v": ("u64", True), "revision": ("u64", True), "prev": ("u64", True),
        "commit_ns": ("u64", False), "fence": ("u64", False), "entries": ("array", False)})
    for name, (rev, prev) in {
        "revision-zero": (0, 0), "prev-equals-revision": (5, 5), "prev-above-revision": (5, 6),
        "revision-beyond-bigint": (9223372036854775808, 1), "revision-u64max": (18446744073709551615, 1),
    }.items():
        put("batch", f"bad-{name}", dump(dict(BATCH, revision=rev, prev=prev)))
    put("batch", "bad-version-2", dump(with_field(BATCH, "v", 2)))
    put("batch", "bad-version-0", dump(with_field(BATCH, "v", 0)))
    put("batch", "bad-crasher-op-number", '{"v":1,"revision":42,"prev":40,"commit_ns":1,"fence":7,'
        '"entries":[{"ns":"metadata","key":"x","op":555}]}')
    put("batch", "bad-entry-deep", dump(with_field(BATCH, "entries", [[[[[[[[[[ENTRY]]]]]]]]]])))
    put("batch", "bad-entry-not-object", dump(with_field(BATCH, "entries", [42])))
    entry_fields = {"ns": ("string", True), "key": ("string", True), "op": ("string", True),
                    "value": ("string", True), "category": ("string", False)}
    for field, (kind, required) in entry_fields.items():
        for wname, wvalue in WRONG.items():
            if kind == "string" and wname in STRING_OK and field in ("value", "category"):
                continue
            if field == "key" and wname in ("string", "numeric-string"):
                continue
            put("batch", f"bad-entry-{field}-{wname}",
                dump(with_field(BATCH, "entries", [with_field(ENTRY, field, wvalue)])))
        put("batch", f"{'bad' if required else 'good'}-entry-{field}-missing",
            dump(with_field(BATCH, "entries", [without(ENTRY, field)])))
    put("batch", "bad-entry-namespace-that-does-not-exist",
        dump(with_field(BATCH, "entries", [dict(ENTRY, ns="secrets")])))
    put("batch", "bad-entry-op-lowercase",
        dump(with_field(BATCH, "entries", [dict(ENTRY, op="u")])))
    put("batch", "bad-entry-key-too-long",
        dump(with_field(BATCH, "entries", [dict(ENTRY, key="k" * 4097)])))
    put("batch", "good-entry-key-at-limit",
        dump(with_field(BATCH, "entries", [dict(ENTRY, key="k" * 4096)])))
    put("batch", "bad-entry-category-too-long",
        dump(with_field(BATCH, "entries", [dict(ENTRY, category="c" * 256)])))
    put("batch", "bad-entry-duplicate-op",
        dump(BATCH).replace('"op":"U"', '"op":"U","op":"D"'))


# ---------------------------------------------------------------------------------------
# L2 snapshots (the good one carries a checksum made by the C++ encoder)

SNAPSHOT = {"v": 1, "revision": 99, "count": 2, "checksum": "b292ed3511e93659",
            "entries": [{"ns": "config", "key": "a", "value": "1", "category": "basic"},
                        {"ns": "metadata", "key": "global_metadata",
                         "value": '{"kb": [{"id": 1}]}'}]}


def snapshots():
    put("snapshot", "good-two-entries", dump(SNAPSHOT))
    common_json("snapshot", SNAPSHOT)
    field_table("snapshot", SNAPSHOT, {
        "v": ("u64", True), "revision": ("u64", True), "count": ("u64", True),
        "checksum": ("string", True), "entries": ("array", True)})
    put("snapshot", "bad-checksum-altered", dump(with_field(SNAPSHOT, "checksum", "0" * 16)))
    put("snapshot", "bad-count-wrong", dump(with_field(SNAPSHOT, "count", 3)))
    put("snapshot", "bad-entry-dropped",
        dump(dict(SNAPSHOT, entries=SNAPSHOT["entries"][:1])))
    put("snapshot", "bad-value-altered", dump(SNAPSHOT).replace('\\"kb\\"', '\\"KB\\"'))
    put("snapshot", "bad-truncated", dump(SNAPSHOT)[:80])
    put("snapshot", "bad-revision-zero", dump(with_field(SNAPSHOT, "revision", 0)))
    put("snapshot", "bad-entry-without-value",
        dump(dict(SNAPSHOT, entries=[without(SNAPSHOT["entries"][0], "value")])))


# ---------------------------------------------------------------------------------------
# XRANGE replies of the stream, in RESP (what hiredis's reader parses)


def bulk(s):
    b = s.encode() if isinstance(s, str) else s
    return b"$%d\r\n%s\r\n" % (len(b), b)


def arr(*items):
    return b"*%d\r\n" % len(items) + b"".join(items)


def streams():
    doc = dump(BATCH)
    entry = arr(bulk("42-0"), arr(bulk("d"), bulk(doc)))
    put("stream", "good-one-entry", arr(entry))
    put("stream", "good-empty", b"*0\r\n")
    second = dump(dict(BATCH, revision=43, prev=42))
    put("stream", "good-two-entries", arr(entry, arr(bulk("43-0"), arr(bulk("d"), bulk(second)))))
    put("stream", "bad-nil", b"$-1\r\n")
    put("stream", "bad-error", b"-ERR wrong type\r\n")
    put("stream", "bad-integer", b":5\r\n")
    put("stream", "bad-status", b"+OK\r\n")
    put("stream", "bad-nil-array", b"*-1\r\n")
    put("stream", "any-entry-wrong-field-name", arr(arr(bulk("42-0"), arr(bulk("x"), bulk(doc)))))
    put("stream", "any-entry-two-fields",
        arr(arr(bulk("42-0"), arr(bulk("d"), bulk(doc), bulk("d"), bulk(doc)))))
    put("stream", "any-entry-odd-fields", arr(arr(bulk("42-0"), arr(bulk("d")))))
    put("stream", "any-entry-nil-value", arr(arr(bulk("42-0"), arr(bulk("d"), b"$-1\r\n"))))
    put("stream", "any-entry-integer-value", arr(arr(bulk("42-0"), arr(bulk("d"), b":1\r\n"))))
    put("stream", "any-entry-nil", arr(b"$-1\r\n"))
    put("stream", "any-entry-not-array", arr(bulk("42-0")))
    put("stream", "any-entry-id-garbage", arr(arr(bulk("x-y"), arr(bulk("d"), bulk(doc)))))
    put("stream", "any-entry-id-u64max",
        arr(arr(bulk("18446744073709551615-0"), arr(bulk("d"), bulk(doc)))))
    put("stream", "any-entry-id-mismatch", arr(arr(bulk("41-0"), arr(bulk("d"), bulk(doc)))))
    put("stream", "any-entry-three-parts", arr(arr(bulk("42-0"), arr(bulk("d"), bulk(doc)), bulk("z"))))
    put("stream", "any-entry-crasher",
        arr(arr(bulk("42-0"), arr(bulk("d"), bulk(
            '{"v":1,"revision":42,"prev":41,"entries":[{"ns":"metadata","key":"x","op":555}]}')))))
    put("stream", "any-deeply-nested", b"*1\r\n" * 20 + b":1\r\n")


# ---------------------------------------------------------------------------------------
# Agents' reports in yuxi:config:agents (the input is "<pod>\n<report>")

REPORT = {"v": 1, "revision": 42, "heartbeat_ms": 1700000000000, "segment": "yuxi-config",
          "role": "relay", "state": "ok"}


def reports():
    put("agent_report", "good-report", "api-0\n" + dump(REPORT))
    for f in ("segment", "role", "state"):
        put("agent_report", f"good-{f}-missing", "api-0\n" + dump(without(REPORT, f)))
    for name, text in {"empty": "", "null": "null", "array": "[]", "garbage": "{x",
                       "deep": deep_array(5000)}.items():
        put("agent_report", f"bad-{name}", "api-0\n" + text)
    for field, kind in {"v": "u64", "revision": "u64", "heartbeat_ms": "u64",
                        "segment": "string", "role": "string", "state": "string"}.items():
        for wname, wvalue in WRONG.items():
            if kind == "u64" and wname in NUMBER_OK and field != "v":
                continue
            if kind == "string" and wname in STRING_OK:
                continue
            put("agent_report", f"bad-{field}-{wname}", "api-0\n" + dump(with_field(REPORT, field, wvalue)))
    for f in ("v", "revision", "heartbeat_ms"):
        put("agent_report", f"bad-{f}-missing", "api-0\n" + dump(without(REPORT, f)))
    put("agent_report", "bad-role-escape", "api-0\n" + dump(dict(REPORT, role="\x1b[2J")))
    put("agent_report", "bad-pod-escape", "\x1b]0;owned\x07\n" + dump(REPORT))
    put("agent_report", "bad-pod-empty", "\n" + dump(REPORT))
    put("agent_report", "bad-pod-too-long", "p" * 254 + "\n" + dump(REPORT))
    put("agent_report", "bad-too-large", "api-0\n" + dump(dict(REPORT, segment="s" * 5000)))


# ---------------------------------------------------------------------------------------
# The relay's rewind record, yuxi:config:history

HISTORY = {"v": 1, "id": "0123456789abcdef0123456789abcdef", "revision": 41, "first_lost": 0}


def histories():
    put("history", "good-record", dump(HISTORY))
    put("history", "good-minimal", dump(dict(HISTORY, id="ab", revision=0, first_lost=7)))
    for name, text in {"empty": "", "null": "null", "array": "[]", "garbage": "{x",
                       "deep": deep_array(5000)}.items():
        put("history", f"bad-{name}", text)
    put("history", "bad-version", dump(dict(HISTORY, v=2)))
    put("history", "bad-id-escape", dump(dict(HISTORY, id="AB\x1b[2J")))
    put("history", "bad-id-empty", dump(dict(HISTORY, id="")))
    put("history", "bad-revision-range", dump(dict(HISTORY, revision=2**63)))
    put("history", "bad-duplicate-key", dump(HISTORY)[:-1] + ',"id":"cd"}')
    for f in ("v", "id", "revision", "first_lost"):
        put("history", f"bad-{f}-missing", dump(without(HISTORY, f)))
    put("history", "bad-too-large", dump(dict(HISTORY, id="a" * 2000)))


# ---------------------------------------------------------------------------------------
# NOTIFY yuxi_config payloads


def notifies():
    for name, text in {"revision": "42", "bigint-max": "9223372036854775807"}.items():
        put("notify", f"good-{name}", text)
    for name, text in {"empty": "", "zero": "0", "negative": "-1", "space": " 42",
                       "plus": "+42", "hex": "0x2a", "fraction": "4.2", "u64max": "18446744073709551615",
                       "beyond-bigint": "9223372036854775808", "text": "hello", "json": '{"revision":1}',
                       "nul": "4\x002", "long": "9" * 8000}.items():
        put("notify", f"bad-{name}", text)


# ---------------------------------------------------------------------------------------
# Catch-up replies: rows of 10 columns, tab-separated, \N for NULL (libpq's text form)

WATERMARK = "\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t0\t42"


def row(rev="42", ns="config", key="embed_model", op="U", value='"bge-m3"', category="models",
        changed="1700000000000000", tx="1234"):
    return "\t".join([rev, ns, key, op, value, category, changed, tx, "\\N", "\\N"])


def catchups():
    put("catchup", "good-watermark-only", WATERMARK)
    put("catchup", "good-one-row", WATERMARK + "\n" + row())
    put("catchup", "good-delete", WATERMARK + "\n" + row(op="D", value="\\N", category="\\N"))
    put("catchup", "good-unsorted", WATERMARK + "\n" + row(rev="44") + "\n" + row(rev="43"))
    put("catchup", "bad-empty", "")
    put("catchup", "bad-no-watermark", row())
    put("catchup", "bad-two-watermarks", WATERMARK + "\n" + WATERMARK)
    put("catchup", "bad-watermark-null-head", "\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t0\t\\N")
    put("catchup", "bad-duplicate-revision", WATERMARK + "\n" + row() + "\n" + row())
    for name, kwargs in {
        "revision-negative": {"rev": "-1"}, "revision-zero": {"rev": "0"},
        "revision-text": {"rev": "x"}, "revision-u64max": {"rev": "18446744073709551615"},
        "namespace-unknown": {"ns": "secrets"}, "op-unknown": {"op": "X"},
        "update-null-value": {"value": "\\N"}, "key-empty": {"key": ""},
        "key-too-long": {"key": "k" * 4097}, "changed-text": {"changed": "yesterday"},
        "tx-null": {"tx": "\\N"}, "category-too-long": {"category": "c" * 256},
    }.items():
        put("catchup", f"bad-{name}", WATERMARK + "\n" + row(**kwargs))
    put("catchup", "bad-short-row", WATERMARK + "\n42\tconfig")


# ---------------------------------------------------------------------------------------
# HTTP requests to the agent's server


def https():
    crlf = "\r\n"
    for name, text in {
        "get-healthz": "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n",
        "get-metrics": "GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n",
        "get-readyz-close": "GET /readyz HTTP/1.0\r\n\r\n",
        "head": "HEAD /healthz HTTP/1.1\r\nHost: a\r\n\r\n",
        "post-body": "POST /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
        "pipelined": "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n" * 5,
        "not-found": "GET /secret HTTP/1.1\r\n\r\n",
        "query": "GET /metrics?x=%00%ff HTTP/1.1\r\n\r\n",
        "absolute-uri": "GET http://evil/metrics HTTP/1.1\r\n\r\n",
        "bad-method": "BREW /healthz HTTP/1.1\r\n\r\n",
        "bad-version": "GET /healthz HTTP/9.9\r\n\r\n",
        "no-version": "GET /healthz\r\n\r\n",
        "garbage": "\x00\x01\x02\xff\xfe",
        "huge-header": "GET /healthz HTTP/1.1\r\nX: " + "a" * 9000 + "\r\n\r\n",
        "many-headers": "GET /healthz HTTP/1.1\r\n" + "X: y\r\n" * 500 + "\r\n",
        "chunked": "POST /healthz HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nfffffffff\r\n",
        "negative-length": "POST /healthz HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
        "huge-length": "POST /healthz HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
        "long-uri": "GET /" + "a" * 70000 + " HTTP/1.1\r\n\r\n",
        "header-folding": "GET /healthz HTTP/1.1\r\nX: a\r\n b\r\n\r\n",
        "bare-lf": "GET /healthz HTTP/1.1\nHost: a\n\n",
    }.items():
        kind = ("good" if name in ("get-healthz", "get-metrics", "get-readyz-close", "pipelined")
                else "bad" if name in ("not-found", "bad-method", "huge-header", "post-body", "head",
                                       "long-uri", "garbage")
                else "any")
        put("http", f"{kind}-{name}", text)
    del crlf


# ---------------------------------------------------------------------------------------
# Files of file mode


def files():
    base = os.path.join(HERE, "..", "..", "samples", "saves", "config", "base.toml")
    with open(base, "rb") as f:
        put("toml", "good-sample-base", f.read())
    put("toml", "good-empty", "")
    put("toml", "good-dotted-100", "a" + ".a" * 99 + " = 1\n")
    put("toml", "good-strings-with-dots", 'a = "x.y.z"\nb = \'\'\'\n[c.d.e]\n\'\'\'\n')
    put("toml", "bad-dotted-key-200", "a" + ".a" * 199 + " = 1\n")
    put("toml", "bad-dotted-key-3000", "a" + ".a" * 2999 + " = 1\n")
    put("toml", "bad-header-3000", "[a" + ".a" * 2999 + "]\nx = 1\n")
    put("toml", "bad-array-of-tables-deep", "[[a" + ".a" * 200 + "]]\nx = 1\n")
    put("toml", "bad-inline-arrays-300", "a = " + "[" * 300 + "]" * 300 + "\n")
    put("toml", "bad-inline-tables-deep", "a = " + "{b = " * 200 + "1" + "}" * 200 + "\n")
    put("toml", "bad-mixed-deep", "[a" + ".a" * 60 + "]\nb" + ".b" * 60 + " = [[[[[[[[[[1]]]]]]]]]]\n")
    put("toml", "bad-nan", "a = nan\n")
    put("toml", "bad-inf", "a = -inf\n")
    put("toml", "bad-invalid-utf8", b'a = "\xff"\n')
    put("toml", "bad-duplicate-key", "a = 1\na = 2\n")
    put("toml", "bad-unterminated", 'a = "x\n')
    put("toml", "bad-garbage", "\x00\x01[[[")
    meta = os.path.join(HERE, "..", "..", "samples", "saves", "knowledge_base_data",
                        "global_metadata.json")
    with open(meta, "rb") as f:
        put("json_file", "good-global-metadata", f.read())
    put("json_file", "good-deep-100", deep_array(100))
    put("json_file", "bad-deep-200", deep_array(200))
    put("json_file", "bad-deep-5000", deep_array(5000))
    put("json_file", "bad-duplicate-key", '{"a":1,"a":2}')
    put("json_file", "bad-invalid-utf8", b'{"a":"\xff"}')
    put("json_file", "bad-trailing", '{"a":1} {')
    put("json_file", "bad-empty", "")


# ---------------------------------------------------------------------------------------
# DATABASE_URL and the agent's command line (arguments separated by NUL)


def settings():
    for name, url in {
        "uri": "postgresql://yuxi:secret@db:5432/yuxi_know",
        "asyncpg": "postgresql+asyncpg://yuxi:secret@db/yuxi_know?ssl=true",
        "keywords": "host=db dbname=yuxi_know user=yuxi password=secret",
        "multi-host": "postgresql://u:p@h1:5432,h2:5432/db?target_session_attrs=read-write",
        "at-in-password": "postgresql://u:p@ss/word@db/yuxi",
    }.items():
        put("database_url", f"good-{name}", url)
    for name, url in {
        "empty": "", "scheme": "mysql://u:p@h/db", "no-host": "postgresql://",
        "port-text": "postgresql://u:p@h:http/db", "port-zero": "postgresql://h:0/db",
        "port-big": "postgresql://h:65536/db", "keywords-unterminated": "host='db",
        "keywords-unknown": "hots=db", "nul": "postgresql://h/d\x00b", "huge": "postgresql://" + "h" * 70000,
    }.items():
        put("database_url", f"bad-{name}", url)
    nul = "\x00"
    for name, argv in {
        "file-mode": ["--mode", "file", "--segment", "t1"],
        "database-mode": ["--mode=database", "--database-url", "postgresql://h/db"],
        "redis-insecure": ["--mode", "database", "--database-url", "postgresql://h/db",
                           "--redis-host", "r", "--redis-port", "6380", "--insecure-redis"],
        "help": ["--help"],
    }.items():
        put("options", f"good-{name}", nul.join(argv))
    for name, argv in {
        "unknown-flag": ["--mode", "file", "--nope"],
        "mode": ["--mode", "cloud"],
        "port": ["--redis-host", "r", "--redis-port", "99999"],
        "duration": ["--safety-poll", "5 fortnights"],
        "duration-overflow": ["--safety-poll", "99999999999999999999h"],
        "size": ["--max-value-bytes", "18446744073709551615G"],
        "missing-value": ["--segment"],
        "empty-value": ["--segment="],
        "positional": ["file"],
        "segment-slash": ["--segment", "../etc/passwd"],
        "http": ["--http", "[::1:99"],
        "database-no-url": ["--mode", "database"],
        "redis-without-a-key": ["--mode", "database", "--database-url", "postgresql://h/db",
                                "--redis-host", "r"],
        "metadata": ["--metadata", "=x"],
    }.items():
        put("options", f"bad-{name}", nul.join(argv))


# ---------------------------------------------------------------------------------------
# Signed envelopes (core/signing.hpp), with the harness's key

KEY = base64.b64decode("eXV4aS1jb25maWctdGVzdC1zaWduaW5nLWtleS0wMDE=")
OTHER = base64.b64decode("eXV4aS1jb25maWctdGVzdC1zaWduaW5nLWtleS0wMDI=")


def seal(document, key=KEY):
    kid = hmac.new(key, b"yuxi-config key id", hashlib.sha256).digest()[:4].hex()
    head = f"y1.{kid}.".encode()
    mac = hmac.new(key, head + document.encode(), hashlib.sha256).digest()
    return head + base64.urlsafe_b64encode(mac).rstrip(b"=") + b"." + document.encode()


def envelopes():
    doc = dump(BATCH)
    good = seal(doc)
    put("envelope", "good-batch", good)
    put("envelope", "good-empty-document", seal(""))
    put("envelope", "bad-unsigned", doc)
    put("envelope", "bad-empty", "")
    put("envelope", "bad-other-key", seal(doc, OTHER))
    put("envelope", "bad-altered-document", good[:-3] + b"99}")
    put("envelope", "bad-altered-mac", good[:12] + (b"A" if good[12:13] != b"A" else b"B") + good[13:])
    put("envelope", "bad-truncated-mac", good[:40])
    put("envelope", "bad-no-dots", good.replace(b".", b"_"))
    put("envelope", "bad-version-2", b"y2" + good[2:])
    put("envelope", "bad-short-id", b"y1.abc." + good[12:])
    put("envelope", "bad-padded-mac", good[:55] + b"=" + good[55:])


# Value schemas' mirror document (core/value_schema.hpp)

PROVIDER = {"type": "object", "required": ["models"],
            "properties": {"models": {"type": "array", "items": {"type": "string"}},
                           "base_url": {"type": "string", "pattern": "^https?://"}}}


def value_schemas():
    def doc(*rules, v=1):
        return dump({"v": v, "schemas": [{"namespace": ns, "pattern": p, "schema": sc}
                                         for ns, p, sc in rules]})
    put("value_schemas", "good-none", doc())
    put("value_schemas", "good-provider", doc(("config", "model_provider", PROVIDER)))
    put("value_schemas", "good-pattern", doc(("config", "*_model", {"type": "string", "enum": ["a", "b"]}),
                                             ("metadata", "kb_*", {"type": "object"})))
    put("value_schemas", "good-local-ref", doc(("config", "k", {
        "definitions": {"s": {"type": "string"}}, "type": "array", "items": {"$ref": "#/definitions/s"}})))
    put("value_schemas", "good-unique", doc(("config", "k", {"type": "array", "uniqueItems": True})))
    put("value_schemas", "bad-not-json", "{\"v\":1,")
    put("value_schemas", "bad-empty", "")
    put("value_schemas", "bad-version", doc(("config", "k", {}), v=2))
    put("value_schemas", "bad-schemas-not-array", dump({"v": 1, "schemas": {}}))
    put("value_schemas", "bad-namespace", doc(("other", "k", {})))
    put("value_schemas", "bad-empty-pattern", doc(("config", "", {})))
    put("value_schemas", "bad-remote-ref", doc(("config", "k", {"$ref": "http://example.com/s.json"})))
    put("value_schemas", "bad-ref-cycle", doc(("config", "k", {"definitions": {"a": {"$ref": "#/definitions/a"}},
                                                               "$ref": "#/definitions/a"})))
    put("value_schemas", "bad-regex", doc(("config", "k", {"type": "string", "pattern": "(unclosed"})))
    deep = {"type": "array"}
    for _ in range(100):
        deep = {"type": "array", "items": deep}
    put("value_schemas", "bad-deep", doc(("config", "k", deep)))


# Seeds written by hand, not here (the injector's AdmissionReviews: injector_admission_test
# replays them): kept when the rest is rewritten.
KEPT = {"admission"}


def main():
    for name in os.listdir(OUT) if os.path.isdir(OUT) else []:
        if name not in KEPT:
            shutil.rmtree(os.path.join(OUT, name))
    batches()
    snapshots()
    streams()
    reports()
    histories()
    notifies()
    catchups()
    https()
    files()
    settings()
    envelopes()
    value_schemas()
    print(f"make_seeds: {len(written)} files under {os.path.relpath(OUT)}")


if __name__ == "__main__":
    main()
