"""The binding scheme: what REPORTDATA covers, and one quote for both files pytest-benchmark writes."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import pytest
from pytest_benchmark.utils import safe_dumps

from pytest_tee.attestation.binding import SCHEME, SessionAttestor, bound_document, canonical_bytes, results_digest
from pytest_tee.attestation.simulate import SimulatedTd


def results(*, with_data: bool = True) -> dict:
    stats = {"min": 0.5, "median": 0.75, "max": 1.0, "rounds": 3, "iterations": 1}
    if with_data:
        stats["data"] = [0.5, 0.75, 1.0]
    return {
        "machine_info": {"node": "runner", "tee": {"tee": "tdx", "fingerprint": "3f2a9c"}},
        "commit_info": {"id": "abc123", "dirty": False},
        "benchmarks": [
            {
                "name": "test_decode[tdx]",
                "stats": stats,
                "extra_info": {"tee": {"samples": {"decode_tps": [4.1, 4.0, 4.2]}, "weights": "synthetic"}},
            }
        ],
        "datetime": "2025-01-01T00:00:00+00:00",
        "version": "5.3.1",
        "pytest_tee": {"schema": 1, "environment_fingerprint": "3f2a9c"},
    }


def test_canonical_form_is_sorted_compact_ascii() -> None:
    doc = {"b": 1, "a": {"d": "é", "c": [1.5, None]}}
    assert canonical_bytes(doc) == b'{"a":{"c":[1.5,null],"d":"\\u00e9"},"b":1}'
    assert results_digest(doc) == hashlib.sha512(canonical_bytes(doc)).digest()
    assert SCHEME == "sha512-canonical-json-v1"


def test_raw_timing_data_and_the_attestation_block_are_not_bound() -> None:
    digest = results_digest(results(with_data=True))
    assert results_digest(results(with_data=False)) == digest
    attested = results()
    attested["pytest_tee"]["attestation"] = {"evidence": ["anything"]}
    assert results_digest(attested) == digest
    # A document that had no pytest_tee section before attestation binds the same once the block is added.
    bare = results()
    del bare["pytest_tee"]
    with_block = copy.deepcopy(bare)
    with_block["pytest_tee"] = {"attestation": {}}
    assert results_digest(with_block) == results_digest(bare)


def test_every_result_and_per_round_sample_is_bound() -> None:
    digest = results_digest(results())
    changed = results()
    changed["benchmarks"][0]["extra_info"]["tee"]["samples"]["decode_tps"][1] = 4.01
    assert results_digest(changed) != digest
    changed = results()
    changed["benchmarks"][0]["stats"]["median"] = 0.76
    assert results_digest(changed) != digest
    changed = results()
    changed["machine_info"]["tee"]["tee"] = "none"
    assert results_digest(changed) != digest


def test_the_digest_survives_the_way_pytest_benchmark_saves_the_file() -> None:
    doc = results()
    doc["machine_info"]["odd"] = Path("/opt/model")  # pytest-benchmark writes "UNSERIALIZABLE[...]" for these
    doc["machine_info"]["nan"] = float("nan")
    doc["machine_info"][7] = "int key"
    saved = json.loads(safe_dumps(doc, ensure_ascii=True, indent=4))
    assert results_digest(saved) == results_digest(doc)
    assert bound_document(doc)["machine_info"]["odd"] == "UNSERIALIZABLE[PosixPath('/opt/model')]"


def test_a_document_must_be_an_object() -> None:
    with pytest.raises(TypeError, match="JSON object"):
        bound_document([1, 2])  # type: ignore[arg-type]


def test_one_attestation_binds_both_the_json_file_and_storage(tmp_path: Path) -> None:
    json_doc = results(with_data=True)  # what --benchmark-json gets
    storage_doc = results(with_data=False)  # what --benchmark-autosave gets, stamped a moment later
    storage_doc["datetime"] = "2025-01-01T00:00:00.250000+00:00"
    with SimulatedTd(tmp_path / "td") as td:
        attestor = SessionAttestor(sysroot=td.sysroot, gpu=False)
        first = attestor.attest(json_doc)
        second = attestor.attest(storage_doc)
    assert len(td.requests) == 1  # one quote for the session
    assert storage_doc["datetime"] == json_doc["datetime"]
    assert first == second
    assert results_digest(storage_doc) == results_digest(json_doc) == bytes.fromhex(first["report_data"])
    # A document with different results is attested anew, not given a stale block.
    with SimulatedTd(tmp_path / "td2") as td2:
        attestor = SessionAttestor(sysroot=td2.sysroot, gpu=False)
        attestor.attest(results())
        other = results()
        other["benchmarks"][0]["stats"]["median"] = 9.0
        block = attestor.attest(other)
    assert len(td2.requests) == 2
    assert block["report_data"] == results_digest(other).hex()


def test_attach_stores_the_block_where_verify_looks(tmp_path: Path) -> None:
    from pytest_tee.attestation.signatures import SignatureContext
    from pytest_tee.attestation.simulated_pki import SIMULATED_ANCHORS
    from pytest_tee.attestation.verify import verify_document

    simulated = SignatureContext(anchors=SIMULATED_ANCHORS)
    doc = results()
    del doc["pytest_tee"]  # attach creates the section; an empty one is not bound
    with SimulatedTd(tmp_path / "td") as td:
        block = SessionAttestor(sysroot=td.sysroot, gpu=False).attach(doc)
    assert doc["pytest_tee"]["attestation"] is block
    assert not any(check.failed for check in verify_document(doc, signatures=simulated))
    doc["pytest_tee"]["added_later"] = True  # anything added after attaching is not covered
    assert any(check.name == "REPORTDATA" and check.failed for check in verify_document(doc, signatures=simulated))
