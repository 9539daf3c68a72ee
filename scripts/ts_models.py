"""Model versions through TorchServe's management API (token from key_file.json).

    python -m scripts.ts_models list
    python -m scripts.ts_models register model_store/msgnet-v2.mar [--workers 1] [--set-default]
    python -m scripts.ts_models set-default 2.0
    python -m scripts.ts_models scale 2.0 --workers 2
    python -m scripts.ts_models rollback [--to 1.0] [--unregister-current]
    python -m scripts.ts_models unregister 2.0
    python -m scripts.ts_models restore          # after a restart (scripts/serve.sh runs it)

Every command that changes the versions then saves what the server reports (versions, their
archives, workers, the default) to a state file (``--state-file``, ``$TS_MODELS_STATE``, else
logs/run/model_versions.json); ``restore`` registers the saved versions again on a server
that was restarted, scales them and sets the default. serve.sh starts TorchServe with ``--ncs``
(no config snapshots): docs/reliability.md says why this replaces them.

A version is registered from an archive in the model store (``allowed_urls`` admits nothing
else); an archive given by a path outside the store is copied into it first. Build a second
version with ``python -m scripts.build_mar --version 2.0 --archive-name msgnet-v2``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import urllib.parse
import zipfile
from pathlib import Path
from typing import Any

from tsclient import ROOT, Endpoints, TorchServeError, call_with_key, read_properties

DEFAULT_STATE_FILE = ROOT / "logs" / "run" / "model_versions.json"


def version_key(version: str) -> tuple:
    """Order versions like 1.0 < 1.10 < 2.0; non-numeric parts compare as text."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p)
                 for p in re.split(r"[.\-+_]", version))


class Manager:
    def __init__(self, endpoints: Endpoints, key_file: Path | None, model: str,
                 model_store: Path):
        self.endpoints = endpoints
        self.key_file = key_file
        self.model = model
        self.model_store = model_store

    def _call(self, method: str, path: str, **query: Any) -> Any:
        url = f"{self.endpoints.management}{path}"
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        return call_with_key(method, url, "management", self.key_file, timeout=300)[1]

    def versions(self) -> tuple[list[dict], str | None]:
        """All registered versions (described) and the default one."""
        entries = self._call("GET", f"/models/{self.model}/all")
        default = self._call("GET", f"/models/{self.model}")
        default_version = default[0].get("modelVersion") if default else None
        entries = sorted(entries, key=lambda e: version_key(str(e.get("modelVersion"))))
        return entries, default_version

    def register(self, mar: Path, workers: int, set_default: bool, force: bool) -> str:
        name = self._into_store(mar, force)
        result = self._call("POST", "/models", url=name, model_name=self.model,
                            initial_workers=workers, synchronous="true")
        return result.get("status", str(result)) if isinstance(result, dict) else str(result)

    def _into_store(self, mar: Path, force: bool) -> str:
        """The archive's file name in the model store (copying it there when needed)."""
        store = self.model_store.resolve()
        candidate = mar if mar.exists() else store / mar.name
        if not candidate.is_file():
            raise TorchServeError(f"archive not found: {mar} (nor {store / mar.name})")
        candidate = candidate.resolve()
        if candidate.parent != store:
            target = store / candidate.name
            if target.exists() and not force and target.read_bytes() != candidate.read_bytes():
                raise TorchServeError(f"{target} exists and differs; pass --force to replace")
            shutil.copyfile(candidate, target)
            print(f"copied {candidate} -> {target}")
        return candidate.name

    def set_default(self, version: str) -> str:
        result = self._call("PUT", f"/models/{self.model}/{version}/set-default")
        return result.get("status", str(result)) if isinstance(result, dict) else str(result)

    def scale(self, version: str, min_workers: int, max_workers: int) -> str:
        result = self._call("PUT", f"/models/{self.model}/{version}", min_worker=min_workers,
                            max_worker=max_workers, synchronous="true")
        return result.get("status", str(result)) if isinstance(result, dict) else str(result)

    def state(self) -> dict[str, Any]:
        """What ``restore`` needs to rebuild this model's versions: archives, workers and the
        default, as the server reports them now."""
        entries, default = self.versions()
        return {"default": default,
                "versions": [{"version": str(e.get("modelVersion")),
                              "mar": str(e.get("modelUrl")),
                              "min_workers": int(e.get("minWorkers") or 0),
                              "max_workers": int(e.get("maxWorkers") or 0)} for e in entries]}

    def restore(self, saved: dict[str, Any]) -> list[str]:
        """Register the saved versions the server lacks, give them their saved workers and
        set the saved default; returns warnings for what could not be restored (an archive
        no longer in the model store: that version is skipped, the rest is restored)."""
        warnings: list[str] = []
        entries, _ = self.versions()
        live = {str(e.get("modelVersion")): e for e in entries}
        store = self.model_store.resolve()
        for item in saved.get("versions", []):
            version, mar = str(item["version"]), str(item["mar"])
            lo, hi = int(item["min_workers"]), int(item["max_workers"])
            if version not in live:
                if "/" in mar or mar.startswith(".") or not (store / mar).is_file():
                    warnings.append(f"version {version}: archive {mar} is not in {store}; "
                                    "not restored")
                    continue
            elif (live[version].get("minWorkers"), live[version].get("maxWorkers")) == (lo, hi):
                continue
            try:  # one archive that fails to load must not cost the others
                if version not in live:
                    self._call("POST", "/models", url=mar, model_name=self.model,
                               initial_workers=lo, synchronous="true")
                self.scale(version, lo, hi)
            except TorchServeError as exc:
                warnings.append(f"version {version} ({mar}): {exc}")
        default = saved.get("default")
        registered = {str(e.get("modelVersion")) for e in self.versions()[0]}
        if default and default in registered:
            self.set_default(str(default))
        elif default:
            warnings.append(f"the saved default {default} is not registered; the default "
                            "stays as the server started")
        return warnings

    def unregister(self, version: str) -> str:
        result = self._call("DELETE", f"/models/{self.model}/{version}")
        return result.get("status", str(result)) if isinstance(result, dict) else str(result)

    def rollback(self, to: str | None, unregister_current: bool) -> str:
        entries, current = self.versions()
        versions = [str(e.get("modelVersion")) for e in entries]
        if to is None:
            older = [v for v in versions if version_key(v) < version_key(current or "")]
            if not older:
                raise TorchServeError(f"no version older than the default {current} is "
                                      f"registered (versions: {', '.join(versions)})")
            to = older[-1]
        elif to not in versions:
            raise TorchServeError(f"version {to} is not registered "
                                  f"(versions: {', '.join(versions)})")
        messages = [self.set_default(to)]
        if unregister_current and current and current != to:
            messages.append(self.unregister(current))
        return "; ".join(messages)


def format_table(entries: list[dict], default: str | None) -> str:
    rows = [("version", "default", "workers", "batch", "delay_ms", "archive")]
    for e in entries:
        workers = [w.get("status", "?") for w in e.get("workers", [])]
        summary = ", ".join(f"{workers.count(s)} {s}" for s in sorted(set(workers))) or "none"
        rows.append((str(e.get("modelVersion")), "*" if e.get("modelVersion") == default else "",
                     summary, str(e.get("batchSize")), str(e.get("maxBatchDelay")),
                     str(e.get("modelUrl"))))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in rows)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, default=None,
                   help="config.properties to read the management address and model store from")
    p.add_argument("--key-file", type=Path, default=None, help="TorchServe's key_file.json")
    p.add_argument("--model-name", default="msgnet")
    p.add_argument("--model-store", type=Path, default=None)
    p.add_argument("--state-file", type=Path, default=None,
                   help="where versions are saved for restore (default $TS_MODELS_STATE, "
                        "else logs/run/model_versions.json)")
    sub = p.add_subparsers(dest="command", required=True)
    ls = sub.add_parser("list", help="registered versions, the default marked *")
    ls.add_argument("--json", action="store_true")
    reg = sub.add_parser("register", help="register a version from a .mar")
    reg.add_argument("mar", type=Path)
    reg.add_argument("--workers", type=int, default=1)
    reg.add_argument("--set-default", action="store_true")
    reg.add_argument("--force", action="store_true", help="replace a different store archive")
    sd = sub.add_parser("set-default", help="make a version the default")
    sd.add_argument("version")
    sc = sub.add_parser("scale", help="set a version's worker count")
    sc.add_argument("version")
    sc.add_argument("--workers", type=int, default=None, help="min = max = N")
    sc.add_argument("--min-workers", type=int, default=None)
    sc.add_argument("--max-workers", type=int, default=None)
    rb = sub.add_parser("rollback", help="make the previous (or a given) version the default")
    rb.add_argument("--to", default=None)
    rb.add_argument("--unregister-current", action="store_true")
    un = sub.add_parser("unregister", help="remove a version")
    un.add_argument("version")
    sub.add_parser("restore", help="register the saved versions again after a restart")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    config = args.config or Path(os.environ.get("TS_CONFIG") or ROOT / "config.properties")
    store = args.model_store
    if store is None:
        props = read_properties(config) if config.is_file() else {}
        store = Path(props.get("model_store", "model_store"))
        store = store if store.is_absolute() else ROOT / store
    endpoints = Endpoints.from_config(config)
    manager = Manager(endpoints, args.key_file, args.model_name, store)
    state_file = args.state_file or Path(os.environ.get("TS_MODELS_STATE")
                                         or DEFAULT_STATE_FILE)
    try:
        if args.command == "restore":
            return restore(state_file, endpoints, args.key_file, store)
        if args.command == "list":
            entries, default = manager.versions()
            if args.json:
                print(json.dumps({"default": default, "versions": entries}, indent=2))
            else:
                print(format_table(entries, default))
        elif args.command == "register":
            print(manager.register(args.mar, args.workers, args.set_default, args.force))
            if args.set_default:
                with_version = _version_of(manager, args.mar)
                print(manager.set_default(with_version))
        elif args.command == "set-default":
            print(manager.set_default(args.version))
        elif args.command == "scale":
            lo = args.min_workers if args.min_workers is not None else args.workers
            hi = args.max_workers if args.max_workers is not None else args.workers
            if lo is None or hi is None:
                print("scale: give --workers N or --min-workers/--max-workers", file=sys.stderr)
                return 2
            print(manager.scale(args.version, lo, hi))
        elif args.command == "rollback":
            print(manager.rollback(args.to, args.unregister_current))
        elif args.command == "unregister":
            print(manager.unregister(args.version))
    except TorchServeError as exc:
        print(f"ts_models: {exc}", file=sys.stderr)
        status = 1
    else:
        status = 0
    if args.command != "list":  # even after a failure: register may have worked, set-default not
        try:
            save_state(state_file, args.model_name, manager.state())
        except (TorchServeError, OSError) as exc:
            print(f"ts_models: the versions were not saved to {state_file}: {exc}",
                  file=sys.stderr)
            status = 1
    return status


def save_state(path: Path, model: str, state: dict[str, Any]) -> None:
    """Replace ``model``'s entry in the state file (written whole, then renamed: a crash never
    leaves half a file), keeping the other models' entries."""
    saved = _read_state(path)
    saved[model] = state
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(saved, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _read_state(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise TorchServeError(f"{path} is not valid JSON ({exc}); move it away to start "
                              "from the versions the server has") from None
    return data if isinstance(data, dict) else {}


def restore(path: Path, endpoints: Endpoints, key_file: Path | None, store: Path) -> int:
    """``restore`` for every model in the state file; 1 when anything was left out."""
    saved = _read_state(path)
    if not saved:
        print(f"no saved model versions in {path}; nothing to restore")
        return 0
    status = 0
    for model, state in sorted(saved.items()):
        manager = Manager(endpoints, key_file, model, store)
        warnings = manager.restore(state)
        for warning in warnings:
            print(f"ts_models restore: {model}: {warning}", file=sys.stderr)
        status = 1 if warnings else status
        entries, default = manager.versions()
        print(f"{model}: versions {', '.join(str(e.get('modelVersion')) for e in entries)}, "
              f"default {default}")
    return status


def _version_of(manager: Manager, mar: Path) -> str:
    """The version an archive declares (read from its MANIFEST.json)."""
    path = mar if mar.exists() else manager.model_store / mar.name
    with zipfile.ZipFile(path) as archive:
        manifest = json.loads(archive.read("MAR-INF/MANIFEST.json"))
    return str(manifest["model"]["modelVersion"])


if __name__ == "__main__":
    sys.exit(main())
