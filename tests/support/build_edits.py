"""Editing a build directory the way only a test may: as if hwgen compile had written it
so (the manifest's hashes updated), to give the comparison a reference that disagrees."""

import hashlib
import json

from hwgen.compiler.frontends import native


def replace_model(build, model):
    """Save ``model`` as ``build``'s model.hwgen and record its hash in the manifest."""
    path = build / "model.hwgen"
    native.save(model, path)
    manifest_path = build / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["files"]["model"]["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    manifest_path.write_text(json.dumps(manifest))
