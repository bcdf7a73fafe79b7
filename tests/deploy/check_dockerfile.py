#!/usr/bin/env python3
"""Checks deploy/docker/Dockerfile against the binaries this tree builds.

No container engine runs here, so the image is checked from both ends instead:

* readelf -d names the shared libraries yuxi-config-agent, yuxi-configctl and
  yuxi-config-injector link
  directly, ldd finds their files, and dpkg -S maps each one to its Debian package. The
  runtime stage must install exactly those packages, plus only the extras listed in
  JUSTIFIED_EXTRAS with their reason. (What those libraries load in turn, e.g. libpq's
  libssl3, comes with their packages' dependencies.)
* The build stage must install the -dev package that owns each library's link-time name
  (libfoo.so), except the toolchain's own (build-essential brings those).
* Stages: debian:12 to build, debian:12-slim to run. The runtime stage runs as a numeric
  non-root USER (10001:10001, group yuxi), ENTRYPOINT and CMD are in exec form (a JSON
  array: no shell needed at run time), every binary is copied in, EXPOSE 9464.

Usage: check_dockerfile.py [--dockerfile PATH] [--self-test] BUILD_DIR | BINARY...
A BUILD_DIR means BUILD_DIR/bin/ with each of the three binaries.
--self-test also breaks a copy of the Dockerfile in several ways and fails unless the
check rejects every broken copy. Exit status: 0 pass, 1 fail, 77 skipped (no ldd/dpkg).
"""

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BINARIES = ("yuxi-config-agent", "yuxi-configctl", "yuxi-config-injector")

# Packages the runtime stage may install although no binary of this build loads a library
# from them. Each needs a reason; anything else extra is an error.
JUSTIFIED_EXTRAS = {
    "libpq5": "database mode (docs/design.md, 'Parts': libpq, non-blocking LISTEN/NOTIFY); "
              "yuxi-configctl schema/migrate/set.",
    "libhiredis0.14": "Redis fan-out, L2 snapshot and DistributedLock (docs/design.md, 'Redis'); "
                      "loaded once the Redis source is built.",
    "ca-certificates": "CA bundle for libpq sslmode=verify-full against a managed "
                       "PostgreSQL (sslrootcert=/etc/ssl/certs/ca-certificates.crt). "
                       "Not a library: ldd cannot see it.",
}
# The toolchain's runtime libraries: their -dev side comes with build-essential.
TOOLCHAIN = {"libc6", "libgcc-s1", "libstdc++6"}
RUNTIME_USER = "10001:10001"
RUNTIME_GROUP = ("yuxi", "10001")
HTTP_PORT = "9464"


class Fail(Exception):
    pass


# --------------------------------------------------------------------------- binaries

def spellings(path):
    """The paths under which dpkg may have registered a file (usrmerge: /lib vs /usr/lib)."""
    real = os.path.realpath(path)
    out = []
    for p in (path, real):
        out.append(p)
        if p.startswith("/lib") and not p.startswith("/lib64"):
            out.append("/usr" + p)
        if p.startswith("/usr/lib"):
            out.append(p[4:])
    return list(dict.fromkeys(out))


_owners = {}


def dpkg_lookup(paths):
    """Fills the owner cache for many paths with one dpkg -S call (dpkg is slow to start)."""
    todo = [p for p in dict.fromkeys(paths) if p not in _owners]
    if not todo:
        return
    r = subprocess.run(["dpkg", "-S", *todo], capture_output=True, text=True)
    for line in r.stdout.splitlines():
        # "libfoo1:amd64: /usr/lib/..." (or "a, b: path" for a shared path)
        owner, _, p = line.rpartition(": ")
        if p in todo and owner:
            _owners[p] = owner.split(",")[0].strip().split(":")[0]
    for p in todo:
        _owners.setdefault(p, None)


def dpkg_owner(path):
    """The package that owns a file, trying the usrmerge spellings of its path."""
    cands = spellings(path)
    dpkg_lookup(cands)
    for c in cands:
        if _owners.get(c):
            return _owners[c]
    return None


def direct_sonames(binary):
    """The libraries the binary itself names (DT_NEEDED). What those load in turn comes
    with their packages' own dependencies, so apt installs it without being listed."""
    r = subprocess.run(["readelf", "-d", binary], capture_output=True, text=True)
    if r.returncode != 0:
        raise Fail(f"readelf -d {binary} failed: {r.stderr.strip()}")
    return set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", r.stdout))


def needed_libraries(binary):
    needed = direct_sonames(binary)
    r = subprocess.run(["ldd", binary], capture_output=True, text=True)
    if r.returncode != 0:
        raise Fail(f"ldd {binary} failed: {r.stderr.strip()}")
    libs = []
    for line in r.stdout.splitlines():
        parts = line.split()
        if "=>" in parts:
            target = parts[parts.index("=>") + 1]
            if parts[0] not in needed:
                continue
            if target == "not":
                raise Fail(f"{binary}: {parts[0]} not found (ldd: {line.strip()})")
            if target.startswith("/"):
                libs.append(target)
        elif parts and parts[0].startswith("/"):
            libs.append(parts[0])  # the dynamic loader
    return libs


def dev_owner(lib):
    """The -dev package owning a libfoo.so symlink that resolves to the same file."""
    for cand in dev_links(lib):
        owner = dpkg_owner(cand)
        if owner:
            return owner
    return None


def dev_links(lib):
    real = os.path.realpath(lib)
    return [str(c) for c in sorted(Path(real).parent.glob("*.so"))
            if c.is_symlink() and os.path.realpath(c) == real]


def library_map(binaries):
    """{package: sorted [library paths]}, {package: dev package or None}."""
    runtime, dev = {}, {}
    libs = {b: needed_libraries(b) for b in binaries}
    every = [p for ls in libs.values() for lib in ls for p in spellings(lib)]
    every += [p for ls in libs.values() for lib in ls for d in dev_links(lib) for p in spellings(d)]
    dpkg_lookup(every)
    for b in binaries:
        for lib in libs[b]:
            pkg = dpkg_owner(lib)
            if pkg is None:
                raise Fail(f"{b}: no Debian package owns {lib} (dpkg -S); a library "
                           "built by hand cannot go into the image")
            runtime.setdefault(pkg, set()).add(lib)
            if pkg not in TOOLCHAIN and pkg not in dev:
                dev[pkg] = dev_owner(lib)
    return {k: sorted(v) for k, v in runtime.items()}, dev


# ------------------------------------------------------------------------- Dockerfile

def instructions(text):
    """[(lineno, INSTRUCTION, arguments)] with comments dropped and lines joined."""
    out, buf, start = [], "", None
    for n, raw in enumerate(text.splitlines(), 1):
        if re.match(r"^\s*#", raw) or (not raw.strip() and buf):
            continue  # comments and blank lines inside a continuation are skipped
        if not raw.strip():
            continue
        if start is None:
            start = n
        line = raw.rstrip()
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        m = re.match(r"^\s*([A-Za-z]+)\s*(.*)$", buf, re.S)
        if m:
            out.append((start, m.group(1).upper(), m.group(2).strip()))
        buf, start = "", None
    if buf.strip():
        raise Fail("Dockerfile ends inside a line continuation")
    return out


def parse_arg(value):
    name, _, default = value.partition("=")
    if default[:1] in "\"'":
        try:
            default = shlex.split(default)[0] if default.strip() else ""
        except ValueError as e:
            raise Fail(f"ARG {name.strip()}: {e}") from None
    return name.strip(), default


def expand(s, args):
    return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: args.get(m.group(1), ""), s)


def stages(instrs):
    global_args, result, cur = {}, [], None
    for lineno, ins, val in instrs:
        if ins == "FROM":
            m = re.match(r"^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$", val, re.I)
            if not m:
                raise Fail(f"line {lineno}: cannot read FROM {val!r}")
            cur = {"image": m.group(1), "name": m.group(2), "line": lineno,
                   "instrs": [], "args": {}}
            result.append(cur)
        elif cur is None:
            if ins == "ARG":
                k, v = parse_arg(val)
                global_args[k] = v
        else:
            if ins == "ARG":
                k, v = parse_arg(val)
                # a bare ARG in a stage takes the global default
                cur["args"][k] = v if "=" in val else global_args.get(k, "")
            cur["instrs"].append((lineno, ins, val))
    return global_args, result


def apt_packages(run, args):
    """Package names of every `apt-get install` in a RUN command."""
    pkgs = []
    for cmd in re.split(r"&&|;|\|\|", expand(run, args)):
        words = cmd.split()
        if len(words) >= 2 and words[0] in ("apt-get", "apt") and "install" in words:
            for w in words[words.index("install") + 1:]:
                if not w.startswith("-"):
                    pkgs.append(w)
    return pkgs


def exec_form(val):
    try:
        v = json.loads(val)
    except ValueError:
        return False
    return isinstance(v, list) and len(v) > 0 and all(isinstance(x, str) for x in v)


def check_dockerfile(text, runtime_pkgs, dev_pkgs):
    """Returns a list of problems (empty: the Dockerfile is right)."""
    problems = []
    try:
        _, st = stages(instructions(text))
    except Fail as e:
        return [str(e)]
    if len(st) < 2:
        return [f"expected a build stage and a runtime stage, found {len(st)} stage(s)"]
    build, runtime = st[0], st[-1]
    if build["image"] != "debian:12":
        problems.append(f"build stage is FROM {build['image']}, expected debian:12")
    if runtime["image"] != "debian:12-slim":
        problems.append(f"runtime stage is FROM {runtime['image']}, expected debian:12-slim")

    # Runtime packages: exactly the needed ones, plus justified extras.
    installed = []
    for _, ins, val in runtime["instrs"]:
        if ins == "RUN":
            installed += apt_packages(val, runtime["args"])
    need = set(runtime_pkgs)
    have = set(installed)
    for pkg in sorted(need - have):
        problems.append(f"runtime stage does not install {pkg}, which provides "
                        f"{', '.join(runtime_pkgs[pkg])}")
    for pkg in sorted(have - need - set(JUSTIFIED_EXTRAS)):
        problems.append(f"runtime stage installs {pkg}: no binary loads a library from it "
                        "and it is not a justified extra (tests/deploy/check_dockerfile.py)")
    if "--no-install-recommends" not in " ".join(v for _, i, v in runtime["instrs"] if i == "RUN"):
        problems.append("runtime apt-get install without --no-install-recommends")
    if any(re.search(r"\b(curl|wget)\b", v) for _, i, v in runtime["instrs"] if i == "RUN"):
        problems.append("runtime stage downloads with curl/wget")

    # Build stage: the -dev side of every non-toolchain library.
    build_pkgs = set()
    for _, ins, val in build["instrs"]:
        if ins == "RUN":
            build_pkgs.update(apt_packages(val, build["args"]))
    for pkg, devpkg in sorted(dev_pkgs.items()):
        if devpkg is None:
            problems.append(f"no -dev package found on this machine for {pkg}")
        elif devpkg not in build_pkgs:
            problems.append(f"build stage does not install {devpkg} (links against {pkg})")
    for tool in ("build-essential", "cmake", "ninja-build", "pkg-config"):
        if tool not in build_pkgs:
            problems.append(f"build stage does not install {tool}")
    build_runs = " ".join(v for _, i, v in build["instrs"] if i == "RUN")
    if "--preset release" not in build_runs:
        problems.append("build stage does not configure with `cmake --preset release`")
    for b in BINARIES:
        if not re.search(rf"--target[^&;]*\b{re.escape(b)}\b", build_runs):
            problems.append(f"build stage does not build target {b}")
        if f"/out/usr/local/bin/{b}" not in build_runs:
            problems.append(f"build stage does not install {b} into /out/usr/local/bin")

    if not re.search(r"deploy/sql/\*\.sql\b[^&;]*/out/usr/local/share/yuxi-config/sql", build_runs):
        problems.append("build stage does not ship deploy/sql/*.sql in "
                        "/out/usr/local/share/yuxi-config/sql (yuxi-configctl schema apply)")

    # Runtime stage: binaries, user, entrypoint, port.
    rt = runtime["instrs"]
    copies = [v for _, i, v in rt if i == "COPY"]
    if not any(re.match(r"^--from=(build|0)\s+/out/?\s+/$", c) for c in copies):
        problems.append("runtime stage does not COPY --from=build /out/ /")
    users = [v for _, i, v in rt if i == "USER"]
    if not users:
        problems.append("runtime stage has no USER: the container would run as root")
    else:
        user = expand(users[-1], runtime["args"]).strip()
        uid = user.split(":")[0]
        if uid in ("root", "0") or user.split(":")[-1] in ("root", "0"):
            problems.append(f"USER {user} is root")
        elif user != RUNTIME_USER:
            problems.append(f"USER {user}: expected {RUNTIME_USER} (numeric, so that "
                            "runAsNonRoot can be verified without /etc/passwd)")
    runs = " ".join(v for _, i, v in rt if i == "RUN")
    if not re.search(rf"groupadd\b[^&;]*--gid {RUNTIME_GROUP[1]}\b[^&;]*\b{RUNTIME_GROUP[0]}\b", runs):
        problems.append(f"runtime stage does not create group {RUNTIME_GROUP[0]} "
                        f"with gid {RUNTIME_GROUP[1]}")
    if not re.search(r"useradd\b[^&;]*--uid 10001\b", runs):
        problems.append("runtime stage does not create the user with uid 10001")
    entry = [v for _, i, v in rt if i == "ENTRYPOINT"]
    if not entry:
        problems.append("runtime stage has no ENTRYPOINT")
    elif not exec_form(entry[-1]):
        problems.append(f"ENTRYPOINT {entry[-1]} is in shell form: use the exec form "
                        '["/usr/local/bin/yuxi-config-agent"] (no shell at run time)')
    elif json.loads(entry[-1])[0] != "/usr/local/bin/yuxi-config-agent":
        problems.append(f"ENTRYPOINT runs {json.loads(entry[-1])[0]}, expected the agent")
    for _, i, v in rt:
        if i == "CMD" and not exec_form(v):
            problems.append(f"CMD {v} is in shell form")
    if not any(HTTP_PORT in v.split() or f"{HTTP_PORT}/tcp" in v.split()
               for _, i, v in rt if i == "EXPOSE"):
        problems.append(f"runtime stage does not EXPOSE {HTTP_PORT}")
    return problems


# -------------------------------------------------------------------------- self-test

def mutations(text):
    """(description, broken Dockerfile text) pairs that the check must reject."""
    def sub(pattern, repl, count=1):
        new = re.sub(pattern, repl, text, count=count, flags=re.M)
        assert new != text, f"self-test mutation did not apply: {pattern}"
        return new
    return [
        ("a needed runtime library package dropped", sub(r"(RUNTIME_PACKAGES=\"[^\"]*)libevent-2\.1-7 ", r"\1")),
        ("an unjustified extra package", sub(r'(RUNTIME_PACKAGES="[^"]*)"', r'\1 curl"')),
        ("USER root", sub(r"^USER .*$", "USER root")),
        ("USER 0", sub(r"^USER .*$", "USER 0:0")),
        ("no USER", sub(r"^USER .*\n", "")),
        ("ENTRYPOINT in shell form", sub(r"^ENTRYPOINT .*$", "ENTRYPOINT /usr/local/bin/yuxi-config-agent")),
        ("CMD in shell form", sub(r"^(ENTRYPOINT .*)$", r"\1\nCMD --log-level info")),
        ("runtime on the full image", sub(r"^FROM debian:12-slim", "FROM debian:12")),
        ("no EXPOSE", sub(r"^EXPOSE .*\n", "")),
        ("a -dev package missing", sub(r" libevent-dev", "")),
        ("configctl not installed into the image",
         sub(r"/out/usr/local/bin/yuxi-configctl\b", "/tmp/yuxi-configctl")),
        ("the injector not built", sub(r" yuxi-config-injector (\\)$", r" \1")),
        ("the injector's TLS library not installed",
         sub(r"(RUNTIME_PACKAGES=\"[^\"]*)libevent-openssl-2\.1-7 ", r"\1")),
        ("the SQL migrations left out", sub(r" deploy/sql/\*\.sql", "")),
        ("a binary that loads a library nobody installs",
         sub(r"(RUNTIME_PACKAGES=\"[^\"]*)libspdlog1\.10 ", r"\1")),
    ]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dockerfile", default=str(REPO / "deploy/docker/Dockerfile"))
    ap.add_argument("--self-test", action="store_true")
    ap.add_argument("paths", nargs="+", help="BUILD_DIR, or the binaries")
    a = ap.parse_args()

    for tool in ("ldd", "dpkg", "readelf"):
        if shutil.which(tool) is None:
            print(f"SKIP: {tool} is not installed", file=sys.stderr)
            return 77
    binaries = []
    for p in a.paths:
        if os.path.isdir(p):
            binaries += [os.path.join(p, "bin", b) for b in BINARIES]
        else:
            binaries.append(p)
    names = {os.path.basename(b) for b in binaries}
    if names != set(BINARIES):
        print(f"FAIL: need all of {', '.join(BINARIES)}; got {sorted(names)}", file=sys.stderr)
        return 1
    for b in binaries:
        if not os.access(b, os.X_OK):
            print(f"FAIL: {b} is not an executable (build it first)", file=sys.stderr)
            return 1

    try:
        runtime_pkgs, dev_pkgs = library_map(binaries)
    except Fail as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    print("shared libraries by package (ldd + dpkg -S):")
    for pkg, libs in sorted(runtime_pkgs.items()):
        dev = dev_pkgs.get(pkg) or "(toolchain)"
        print(f"  {pkg:<18} {dev:<22} {' '.join(os.path.basename(l) for l in libs)}")
    text = Path(a.dockerfile).read_text()
    problems = check_dockerfile(text, runtime_pkgs, dev_pkgs)
    for p in problems:
        print(f"FAIL: {a.dockerfile}: {p}", file=sys.stderr)
    if problems:
        return 1
    _, st = stages(instructions(text))
    extras = sorted(set(sum((apt_packages(v, st[-1]["args"]) for _, i, v in st[-1]["instrs"]
                             if i == "RUN"), [])) - set(runtime_pkgs))
    for e in extras:
        print(f"  extra {e}: {JUSTIFIED_EXTRAS[e]}")
    print(f"ok: {a.dockerfile}: runtime stage installs the {len(runtime_pkgs)} needed "
          f"package(s) + {len(extras)} justified extra(s); USER {RUNTIME_USER}; exec-form "
          "ENTRYPOINT; EXPOSE 9464")

    if a.self_test:
        missed = 0
        for desc, broken in mutations(text):
            found = check_dockerfile(broken, runtime_pkgs, dev_pkgs)
            if found:
                print(f"  self-test ok: {desc}: {found[0]}")
            else:
                print(f"FAIL: self-test: not detected: {desc}", file=sys.stderr)
                missed += 1
        if missed:
            return 1
        print("ok: self-test: every broken Dockerfile was rejected")
    return 0


if __name__ == "__main__":
    sys.exit(main())
