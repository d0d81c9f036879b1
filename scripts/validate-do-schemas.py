#!/usr/bin/env python3
"""Validate JSON documents against DigitalOcean's official OpenAPI spec (the daemon's subset).

Usage: validate-do-schemas.py SPEC_DIR MANIFEST

SPEC_DIR is the `digitalocean-openapi` folder (holding specification/DigitalOcean-public.v2.yaml).
MANIFEST is a JSON list of {"file": path, "schema": name}; names are listed in SCHEMAS below.
Only the path items named in SCHEMAS are resolved; `x-codeSamples` (whose targets were not copied) and
examples are skipped. OpenAPI 3.0 `nullable` is translated to JSON Schema. Droplet objects are
also checked for keys the spec does not define. Exits non-zero if anything fails or is missing.
"""
import json
import os
import subprocess
import sys


def ensure_modules():
    try:
        import jsonschema  # noqa: F401
        import yaml  # noqa: F401
    except ImportError:
        cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--user", "jsonschema", "PyYAML"]
        if subprocess.call(cmd) != 0:
            subprocess.check_call(cmd + ["--break-system-packages"])


ensure_modules()
import jsonschema  # noqa: E402
import yaml  # noqa: E402

SKIP_KEYS = {"x-codeSamples", "examples", "example"}

# name -> (path item, method, where in the operation)
SCHEMAS = {
    "create-request": ("/v2/droplets", "post", ("requestBody",)),
    "create-response": ("/v2/droplets", "post", ("responses", "202")),
    "list-response": ("/v2/droplets", "get", ("responses", "200")),
    "get-response": ("/v2/droplets/{droplet_id}", "get", ("responses", "200")),
    "error-401": ("/v2/droplets", "get", ("responses", "401")),
    "error-404": ("/v2/droplets/{droplet_id}", "get", ("responses", "404")),
    "error-429": ("/v2/droplets", "get", ("responses", "429")),
    "action-request": ("/v2/droplets/{droplet_id}/actions", "post", ("requestBody",)),
    "action-response": ("/v2/droplets/{droplet_id}/actions", "post", ("responses", "201")),
    "tag-create-request": ("/v2/tags", "post", ("requestBody",)),
    "tag-create-response": ("/v2/tags", "post", ("responses", "201")),
    "tag-get-response": ("/v2/tags/{tag_id}", "get", ("responses", "200")),
    "tag-error-400": ("/v2/tags", "post", ("responses", "400")),
    "tag-resources-request": ("/v2/tags/{tag_id}/resources", "post", ("requestBody",)),
    "untag-resources-request": ("/v2/tags/{tag_id}/resources", "delete", ("requestBody",)),
    "project-assign-request": ("/v2/projects/{project_id}/resources", "post", ("requestBody",)),
    "project-assign-response": ("/v2/projects/{project_id}/resources", "post", ("responses", "200")),
    "project-resources-response": ("/v2/projects/{project_id}/resources", "get", ("responses", "200")),
    "error-500": ("/v2/droplets", "post", ("responses", "500")),
    # The droplet operations do not reference 422; the shared response does exist.
    "error-422": (None, "shared/responses/unprocessable_entity.yml", ()),
}


class Resolver:
    def __init__(self, root):
        self.root = root
        self.cache = {}

    def load(self, path):
        path = os.path.normpath(path)
        if path not in self.cache:
            with open(path) as f:
                self.cache[path] = yaml.safe_load(f)
        return self.cache[path]

    def pointer(self, doc, fragment):
        for part in [p for p in fragment.split("/") if p]:
            part = part.replace("~1", "/").replace("~0", "~")
            doc = doc[part]
        return doc

    def resolve(self, node, base, depth=0):
        if depth > 60:
            raise RuntimeError("$ref nesting too deep (cycle?) at " + base)
        if isinstance(node, list):
            return [self.resolve(item, base, depth + 1) for item in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            ref = node["$ref"]
            file_part, _, fragment = ref.partition("#")
            target_file = os.path.join(os.path.dirname(base), file_part) if file_part else base
            target = self.pointer(self.load(target_file), fragment)
            return self.resolve(target, target_file, depth + 1)
        out = {}
        for key, value in node.items():
            if key in SKIP_KEYS:
                continue
            out[key] = self.resolve(value, base, depth + 1)
        return out


def to_json_schema(node):
    """OpenAPI 3.0 schema object -> JSON Schema (draft 4): `nullable` becomes a null type."""
    if isinstance(node, list):
        return [to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key in ("properties", "patternProperties") and isinstance(value, dict):
            out[key] = {k: to_json_schema(v) for k, v in value.items()}
        elif key in ("nullable", "readOnly", "writeOnly", "deprecated", "xml", "discriminator", "externalDocs"):
            continue
        else:
            out[key] = to_json_schema(value)
    if node.get("nullable") is True:
        if "type" in out:
            t = out["type"]
            out["type"] = (t if isinstance(t, list) else [t]) + ["null"]
            if "enum" in out:
                out["enum"] = list(out["enum"]) + [None]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


def schema_for(resolver, spec_file, name):
    path_item, method, where = SCHEMAS[name]
    if path_item is None:
        base = os.path.join(os.path.dirname(spec_file), method)
        node = resolver.resolve(resolver.load(base), base)
    else:
        spec = resolver.load(spec_file)
        item = spec["paths"][path_item]
        op = resolver.resolve(item[method], spec_file)
        node = op
        for key in where:
            node = node[key]
    return to_json_schema(node["content"]["application/json"]["schema"])


def droplet_properties(resolver, spec_dir):
    path = os.path.join(spec_dir, "specification/resources/droplets/models/droplet.yml")
    return set(resolver.load(path)["properties"].keys())


def droplets_in(document):
    if isinstance(document, dict):
        if "droplet" in document and isinstance(document["droplet"], dict):
            yield document["droplet"]
        for d in document.get("droplets") or []:
            if isinstance(d, dict):
                yield d


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    spec_dir, manifest_path = sys.argv[1], sys.argv[2]
    spec_file = os.path.join(spec_dir, "specification/DigitalOcean-public.v2.yaml")
    if not os.path.isfile(spec_file):
        print(f"spec not found: {spec_file}", file=sys.stderr)
        return 2
    resolver = Resolver(spec_dir)
    with open(manifest_path) as f:
        manifest = json.load(f)
    if not manifest:
        print("empty manifest", file=sys.stderr)
        return 2
    known = droplet_properties(resolver, spec_dir)
    failures = 0
    checked = {}
    for entry in manifest:
        name = entry["schema"]
        schema = schema_for(resolver, spec_file, name)
        with open(entry["file"]) as f:
            document = json.load(f)
        validator = jsonschema.Draft4Validator(schema, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)
        errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
        for droplet in droplets_in(document):
            extra = set(droplet.keys()) - known
            if extra:
                errors.append(f"droplet has keys droplet.yml does not define: {sorted(extra)}")
        for error in errors:
            failures += 1
            where = "/".join(str(p) for p in getattr(error, "absolute_path", []))
            message = getattr(error, "message", str(error))
            print(f"FAIL {name} {os.path.basename(entry['file'])} at /{where}: {message}")
        checked[name] = checked.get(name, 0) + 1
    summary = ", ".join(f"{k}×{v}" for k, v in sorted(checked.items()))
    print(f"validated {len(manifest)} documents ({summary}); {failures} problems")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
