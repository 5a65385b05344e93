#!/usr/bin/env python3
"""Prints, as one JSON object, the facts tests/deploy.rs checks in a deployment file:

    inspect_files.py compose docker-compose.yml     (parsed with PyYAML)
    inspect_files.py terraform infrastructure        (every *.tf, parsed with python-hcl2)

Values are normalised (sizes in bytes, durations in seconds, port and volume short syntax
split into fields, HCL quotes removed, `var.x` references resolved to their defaults) so
the Rust side asserts on plain data. Exit status 3, with what to install, when a parser
module is missing; .ci/run installs both.
"""

import glob
import json
import os
import re
import sys


def need(module, package):
    try:
        return __import__(module)
    except ImportError:
        sys.stderr.write(
            f"python module '{module}' is missing: install it with `pip install {package}` "
            "(.ci/run does)\n"
        )
        sys.exit(3)


UNITS = {"b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def size_bytes(value):
    if value is None:
        return None
    if isinstance(value, int):
        return value
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([bkmg])?b?", str(value).strip().lower())
    if not m:
        raise SystemExit(f"not a size: {value!r}")
    return int(float(m.group(1)) * UNITS[m.group(2) or "b"])


def duration_secs(value):
    if value is None:
        return None
    parts = re.findall(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)", str(value))
    if not parts or "".join(n + u for n, u in parts) != str(value):
        raise SystemExit(f"not a duration: {value!r}")
    scale = {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * scale[u] for n, u in parts)


def port(entry):
    """Short ("127.0.0.1:8080:8080", "8080:8080", "8080") or long syntax."""
    if isinstance(entry, dict):
        return {
            "host_ip": entry.get("host_ip", ""),
            "published": str(entry.get("published", "")),
            "target": str(entry.get("target", "")),
            "protocol": entry.get("protocol", "tcp"),
        }
    text, _, protocol = str(entry).partition("/")
    host_ip = ""
    if text.startswith("["):
        host_ip, _, text = text[1:].partition("]:")
    parts = text.split(":")
    if len(parts) == 3:
        host_ip, published, target = parts
    elif len(parts) == 2:
        published, target = parts
    else:
        published, target = "", parts[0]
    return {
        "host_ip": host_ip,
        "published": published,
        "target": target,
        "protocol": protocol or "tcp",
    }


def volume(entry):
    if isinstance(entry, dict):
        return {
            "type": entry.get("type", "volume"),
            "source": entry.get("source", ""),
            "target": entry.get("target", ""),
        }
    parts = str(entry).split(":")
    source, target = (parts[0], parts[1]) if len(parts) > 1 else ("", parts[0])
    kind = "bind" if source.startswith((".", "/", "~")) else "volume"
    return {"type": kind, "source": source, "target": target}


def env_files(value):
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [v["path"] if isinstance(v, dict) else v for v in value]


def environment(value):
    if value is None:
        return {}
    if isinstance(value, dict):
        return {k: ("" if v is None else str(v)) for k, v in value.items()}
    out = {}
    for item in value:
        k, _, v = str(item).partition("=")
        out[k] = v
    return out


def compose(path):
    yaml = need("yaml", "pyyaml")
    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    services = doc.get("services") or {}
    out = {
        "top_level_keys": sorted(doc),
        "name": doc.get("name"),
        "services": sorted(services),
        "named_volumes": sorted((doc.get("volumes") or {}).keys()),
        "service": {},
    }
    for name, svc in services.items():
        health = svc.get("healthcheck") or {}
        out["service"][name] = {
            "image": svc.get("image"),
            "pull_policy": svc.get("pull_policy"),
            "restart": svc.get("restart"),
            "init": svc.get("init"),
            "read_only": svc.get("read_only"),
            "env_file": env_files(svc.get("env_file")),
            "environment": environment(svc.get("environment")),
            "ports": [port(p) for p in svc.get("ports") or []],
            "volumes": [volume(v) for v in svc.get("volumes") or []],
            "mem_limit_bytes": size_bytes(svc.get("mem_limit")),
            "memswap_limit_bytes": size_bytes(svc.get("memswap_limit")),
            "stop_grace_seconds": duration_secs(svc.get("stop_grace_period")),
            "stop_signal": svc.get("stop_signal"),
            "logging": svc.get("logging") or {},
            "healthcheck_disabled": bool(health.get("disable"))
            or health.get("test") in (["NONE"], "NONE"),
        }
    return out


def unquote(value):
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    if isinstance(value, list):
        return [unquote(v) for v in value]
    if isinstance(value, dict):
        return {unquote(k): unquote(v) for k, v in value.items() if not k.startswith("__")}
    return value


def terraform(directory):
    hcl2 = need("hcl2", "python-hcl2")
    variables, resources, locals_, providers, files = {}, {}, {}, [], []
    for path in sorted(glob.glob(os.path.join(directory, "*.tf"))):
        files.append(os.path.basename(path))
        with open(path, encoding="utf-8") as f:
            doc = unquote(hcl2.load(f))
        for block in doc.get("variable", []):
            for name, body in block.items():
                variables[name] = body
        for block in doc.get("resource", []):
            for kind, named in block.items():
                for name, body in named.items():
                    resources[f"{kind}.{name}"] = body
        for block in doc.get("locals", []):
            locals_.update(block)
        for block in doc.get("provider", []):
            providers.extend(block.keys())

    def resolve(value):
        if isinstance(value, list):
            return [resolve(v) for v in value]
        if isinstance(value, dict):
            return {k: resolve(v) for k, v in value.items()}
        m = re.fullmatch(r"\$\{var\.(\w+)\}", value) if isinstance(value, str) else None
        if m and m.group(1) in variables:
            return {"var": m.group(1), "default": variables[m.group(1)].get("default")}
        return value

    return {
        "files": files,
        "providers": providers,
        "locals": locals_,
        "variables": {k: {"default": v.get("default")} for k, v in variables.items()},
        "resources": {
            k: resolve(body) for k, body in resources.items()
        },
    }


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("compose", "terraform"):
        raise SystemExit(__doc__)
    kind, path = sys.argv[1], sys.argv[2]
    facts = compose(path) if kind == "compose" else terraform(path)
    json.dump(facts, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
