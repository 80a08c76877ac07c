"""RFC 6962 Merkle tree hashes, inclusion and consistency proofs."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.security.merkle import (
    EMPTY_ROOT,
    ProofError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    verify_consistency,
    verify_inclusion,
)

# The test vectors of Certificate Transparency's reference implementations.
INPUTS = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    bytes(range(0x60, 0x70)),
]
ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def reference_root(leaves: list[bytes]) -> bytes:
    """RFC 6962's recursive definition, written out as the RFC states it."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return node_hash(reference_root(leaves[:k]), reference_root(leaves[k:]))


def test_the_reference_vectors() -> None:
    leaves = [leaf_hash(i) for i in INPUTS]
    assert root([]) == EMPTY_ROOT
    assert [root(leaves[:n]).hex() for n in range(1, 9)] == ROOTS


def test_a_leaf_cannot_pass_for_a_node() -> None:
    a, b = leaf_hash(b"a"), leaf_hash(b"b")
    assert leaf_hash(a + b) != node_hash(a, b)


leaf_lists = st.lists(st.binary(max_size=8), min_size=1, max_size=70).map(
    lambda entries: [leaf_hash(e) for e in entries]
)


@given(leaf_lists)
def test_root_is_rfc_6962s_definition(leaves: list[bytes]) -> None:
    assert root(leaves) == reference_root(leaves)


@given(leaf_lists, st.data())
def test_every_entry_has_an_inclusion_proof_and_a_wrong_one_fails(
    leaves: list[bytes], data: st.DataObject
) -> None:
    n = len(leaves)
    index = data.draw(st.integers(0, n - 1))
    head = root(leaves)
    proof = inclusion_proof(leaves, index)
    verify_inclusion(leaves[index], index, n, proof, head)
    with pytest.raises(ProofError):
        verify_inclusion(leaf_hash(b"not in the log"), index, n, proof, head)
    if n > 1:
        other = data.draw(st.integers(0, n - 1).filter(lambda i: i != index))
        if leaves[other] != leaves[index]:
            with pytest.raises(ProofError):
                verify_inclusion(leaves[index], other, n, proof, head)
    if proof:
        bad = [*proof]
        bad[0] = bytes(32)
        with pytest.raises(ProofError):
            verify_inclusion(leaves[index], index, n, bad, head)
        with pytest.raises(ProofError):
            verify_inclusion(leaves[index], index, n, proof[:-1], head)


@given(leaf_lists, st.data())
def test_every_prefix_is_provably_consistent_and_a_changed_entry_is_not(
    leaves: list[bytes], data: st.DataObject
) -> None:
    n = len(leaves)
    m = data.draw(st.integers(0, n))
    proof = consistency_proof(leaves, m)
    verify_consistency(m, n, root(leaves[:m]), root(leaves), proof)
    if m > 0:
        # The same log with an entry before m rewritten: the old head does not fit.
        changed = list(leaves)
        position = data.draw(st.integers(0, m - 1))
        changed[position] = leaf_hash(b"rewritten" + leaves[position])
        if m < n:
            with pytest.raises(ProofError):
                verify_consistency(m, n, root(leaves[:m]), root(changed), proof)
            with pytest.raises(ProofError):
                verify_consistency(
                    m, n, root(leaves[:m]), root(changed), consistency_proof(changed, m)
                )
        else:
            with pytest.raises(ProofError):
                verify_consistency(m, n, root(leaves[:m]), root(changed), proof)


def test_out_of_range_questions_are_refused() -> None:
    leaves = [leaf_hash(b"x")]
    with pytest.raises(ProofError, match="not in a tree of 1"):
        inclusion_proof(leaves, 1)
    with pytest.raises(ProofError, match="no prefix of 2"):
        consistency_proof(leaves, 2)
    with pytest.raises(ProofError, match="cannot extend"):
        verify_consistency(2, 1, EMPTY_ROOT, EMPTY_ROOT, [])
