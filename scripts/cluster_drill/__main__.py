"""`python -m scripts.cluster_drill [--only NAME ...] [--keep]`: see the package's docstring."""
import argparse
import importlib.util
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from scripts.cluster_drill import commands as cmd
from scripts.cluster_drill.cluster import Cluster, ClusterError, stop_groups
from scripts.cluster_drill.drills import DRILLS, Context, run_drill

APT = {"unshare": "util-linux", "runuser": "util-linux", "initdb": "postgresql"}
PIP = {"moto": "moto[server]==5.2.6", "flask": "moto[server]==5.2.6", "boto3": "boto3==1.44.18",
       "psycopg2": "psycopg2-binary==2.9.13"}


def which(tool: str) -> str | None:
    if tool == "initdb":
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
        return str(found[0]) if found else shutil.which("initdb")
    return shutil.which(tool)


def ensure_tools(say=print) -> None:
    """Install what is missing (Debian packages with apt-get, Python packages with pip) and say so."""
    if os.geteuid() != 0:
        raise SystemExit("cluster drill: error: run as root (a mount namespace per worker, initdb as postgres)")
    missing_apt = sorted({APT[t] for t in APT if which(t) is None})
    if missing_apt:
        say(f"installing with apt-get: {', '.join(missing_apt)}")
        subprocess.run(["apt-get", "update", "-q"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-q", *missing_apt], check=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    missing_pip = sorted({PIP[m] for m in PIP if importlib.util.find_spec(m) is None})
    if missing_pip:
        say(f"installing with pip: {', '.join(missing_pip)}")
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", *missing_pip], check=True)
    still = [t for t in APT if which(t) is None] + [m for m in PIP if importlib.util.find_spec(m) is None]
    if still:
        raise SystemExit(f"cluster drill: error: still missing after installing: {', '.join(still)}")
    say(f"tools: {versions()}" + ("" if missing_apt or missing_pip else " (all present, nothing installed)"))


def versions() -> str:
    from importlib.metadata import version

    text = subprocess.run([which("initdb"), "--version"], capture_output=True, text=True).stdout
    pg = (re.findall(r"\d+\.\d+", text) or ["?"])[0]   # "initdb (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
    return (f"Ray {version('ray')}, MLflow {version('mlflow')}, moto {version('moto')} (S3), PostgreSQL {pg}, "
            f"pyarrow {version('pyarrow')}, boto3 {version('boto3')}")


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    load = os.getloadavg()[0]
    return f"{model}, {os.cpu_count()} cores, load {load:.1f} at start, {platform.system()} {platform.release()}"


def stop_folder(folder: Path) -> int:
    """Stop what a --keep run left: the process groups named in its groups.json."""
    groups = json.loads((folder / "groups.json").read_text())
    killed = stop_groups(groups)
    shutil.rmtree(folder, ignore_errors=True)
    print(f"stopped {len(groups)} process groups ({killed} processes); removed {folder}")
    return 0


def main(argv: list[str] | None = None) -> int:
    names = [d.name for d in DRILLS]
    parser = argparse.ArgumentParser(prog="python -m scripts.cluster_drill",
                                     description="A small real cluster on this machine (moto S3, PostgreSQL, "
                                                 "MLflow, Ray head + 2 workers), then the cluster drills.")
    parser.add_argument("--only", nargs="+", action="extend", choices=names, metavar="NAME",
                        help=f"run only these drills ({', '.join(names)})")
    parser.add_argument("--keep", action="store_true",
                        help="leave the cluster running and its folder in place (stop it with --stop FOLDER)")
    parser.add_argument("--stop", type=Path, metavar="FOLDER", help="stop the cluster a --keep run left in FOLDER")
    args = parser.parse_args(argv)
    if args.stop:
        return stop_folder(args.stop)
    began = time.time()
    if not (cmd.DATA_DIR / "train").is_dir():
        parser.error(f"no CIFAR-10 image folders at {cmd.DATA_DIR}: set LOTTERY_DATA_DIR")
    print(f"cluster drill on {machine()}", flush=True)
    ensure_tools()
    selected = [d for d in DRILLS if not args.only or d.name in args.only]
    cluster = Cluster.create(keep=args.keep)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    results: list[tuple[str, bool, float, str]] = []
    setup_error = ""
    try:
        print(f"starting the cluster in {cluster.workdir}", flush=True)
        started = time.time()
        cluster.start(log=lambda line: print(line, flush=True))
        print(f"cluster up in {time.time() - started:.0f} s", flush=True)
        ctx = Context(cluster)
        for drill in selected:
            passed, seconds, failure = run_drill(ctx, drill, say=lambda text: print(text, flush=True))
            results.append((drill.name, passed, seconds, failure))
    except ClusterError as err:
        setup_error = str(err).splitlines()[0]
        print(f"cluster drill: the cluster did not start: {setup_error}", flush=True)
    except KeyboardInterrupt:
        setup_error = "interrupted"
        print("\ninterrupted: stopping the cluster", flush=True)
    finally:
        if args.keep:
            print(f"kept: {cluster.workdir} (MLflow {cluster.tracking_uri}, Ray {cluster.ray_address}); stop it with "
                  f"{sys.executable} -m scripts.cluster_drill --stop {cluster.workdir}")
        else:
            killed = cluster.stop()
            print(f"stopped the cluster: {killed} processes, folder removed")
    print("\nsummary")
    for name, passed, seconds, failure in results:
        print(f"  {name:<12} {'passed' if passed else 'FAILED'} {seconds:5.0f} s" + (f"  {failure}" if failure else ""))
    failed = [r for r in results if not r[1]]
    print(f"{len(results) - len(failed)} of {len(results)} drills passed; total {time.time() - began:.0f} s "
          f"(S3 is moto {_moto()}, not AWS S3)")
    return 1 if failed or setup_error else 0


def _moto() -> str:
    from importlib.metadata import version

    return version("moto")


if __name__ == "__main__":
    sys.exit(main())
