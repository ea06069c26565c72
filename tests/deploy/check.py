#!/usr/bin/env python3
"""Checks that the deploy files cannot drift from the programs: every flag
and every AIDLEDGER_* variable a systemd unit, compose*.yaml or Kubernetes
manifest passes to a program, and every key of the example TOML config,
exists in that program's --help.

usage: check.py <deploy-dir> <help-dir>
  <help-dir> holds one file per program, named as invoked with spaces as
  underscores: aidledger_serve.txt, aidledger-projector.txt,
  aidledger-feed.txt, aidctl.txt.
Prints {"checked": <n>, "problems": [...], "files": [...]} as JSON.
"""

import json
import os
import re
import shlex
import sys

import yaml


def load_help(help_dir):
    known = {}
    for name in os.listdir(help_dir):
        program = name[: -len(".txt")].replace("_", " ")
        with open(os.path.join(help_dir, name), encoding="utf-8") as file:
            text = file.read()
        known[program] = {
            "flags": set(re.findall(r"--[a-z][a-z0-9-]*", text)),
            "env": set(re.findall(r"AIDLEDGER_[A-Z0-9_]+", text)),
        }
    return known


class Checker:
    def __init__(self, known):
        self.known = known
        self.checked = 0
        self.problems = []

    def program(self, where, argv):
        if not argv:
            self.problems.append(f"{where}: no program to run")
            return None
        binary = os.path.basename(str(argv[0]))
        if binary == "aidledger" and len(argv) > 1:
            binary = f"aidledger {argv[1]}"
        if binary not in self.known:
            self.problems.append(f"{where}: {binary!r} is not a program of ours")
            return None
        return binary

    def args(self, where, argv):
        program = self.program(where, argv)
        if program is None:
            return None
        for arg in map(str, argv[1:]):
            if arg.startswith("--"):
                flag = arg.split("=", 1)[0]
                self.checked += 1
                if flag not in self.known[program]["flags"]:
                    self.problems.append(f"{where}: {program} has no {flag}")
        return program

    def env(self, where, program, name):
        if not name.startswith("AIDLEDGER_") or program is None:
            return
        self.checked += 1
        if name not in self.known[program]["env"]:
            self.problems.append(f"{where}: {program} reads no {name}")


def check_unit(checker, path):
    program = None
    env = []
    with open(path, encoding="utf-8") as file:
        for line in file:
            line = line.strip()
            if line.startswith("ExecStart="):
                program = checker.args(path, shlex.split(line[len("ExecStart="):]))
            elif line.startswith("Environment="):
                env.append(line[len("Environment="):].split("=", 1)[0])
    for name in env:
        checker.env(path, program, name)


def check_compose(checker, path):
    with open(path, encoding="utf-8") as file:
        document = yaml.safe_load(file)
    for name, service in document["services"].items():
        command = service.get("command")
        if command is None:
            continue  # the reverse proxy
        where = f"{path}: {name}"
        program = checker.args(where, command)
        environment = service.get("environment") or {}
        names = environment.keys() if isinstance(environment, dict) else [
            item.split("=", 1)[0] for item in environment
        ]
        for variable in names:
            checker.env(where, program, variable)


def check_kubernetes(checker, path):
    with open(path, encoding="utf-8") as file:
        documents = [d for d in yaml.safe_load_all(file) if d]
    for document in documents:
        spec = document.get("spec", {}).get("template", {}).get("spec", {})
        for container in spec.get("containers", []):
            where = f"{path}: {container['name']}"
            program = checker.args(where, container.get("args") or container.get("command") or [])
            for variable in container.get("env", []):
                checker.env(where, program, variable["name"])


def check_toml(checker, path):
    # `aidledger serve --config`: keys are the flag names with `_`.
    with open(path, encoding="utf-8") as file:
        for line in file:
            match = re.match(r"^([a-z_]+)\s*=", line)
            if match:
                checker.checked += 1
                flag = "--" + match.group(1).replace("_", "-")
                if flag not in checker.known["aidledger serve"]["flags"]:
                    checker.problems.append(f"{path}: aidledger serve has no {flag}")


def main():
    deploy, help_dir = sys.argv[1:3]
    checker = Checker(load_help(help_dir))
    files = []
    for root, _, names in os.walk(deploy):
        for name in sorted(names):
            path = os.path.join(root, name)
            if name.endswith(".service"):
                check_unit(checker, path)
            elif name.startswith("compose") and name.endswith((".yaml", ".yml")):
                check_compose(checker, path)
            elif name.endswith((".yaml", ".yml")):
                check_kubernetes(checker, path)
            elif name.endswith(".toml"):
                check_toml(checker, path)
            else:
                continue
            files.append(os.path.relpath(path, deploy))
    print(json.dumps({"checked": checker.checked, "problems": checker.problems, "files": sorted(files)}))


if __name__ == "__main__":
    main()
