"""Registering members (issue 14 items 1 and 2): one gateway identity per region, one
member per signing key, and a proof of possession for every key a member record lists
(member-record.v2), made by the member with its private key and checked by every
gateway the record reaches."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from authz_support import eventually, federated_pair
from gwtest import running_gateway, zhejiang

from certs.pki import generate_signing_key, write_public_key
from gateway import codec
from gateway.core import dsse
from gateway.core.crypto import SigningKey, load_signing_key
from gateway.core.possession import prove_possession
from gateway.core.statements import (
    MEMBER_RECORD_TYPES,
    MEMBER_RECORD_V2,
    AuthorityScope,
    MemberKey,
    MemberRecord,
    MemberStatus,
    Role,
)
from gateway.errors import PermissionError, RecordError
from gateway.ops.cli import main as cli_main
from gateway.pb.alliance.v1 import statements_pb2 as pb
from gateway.service.ledger import Accepted


def test_members_add_refuses_gateway_ids_other_than_the_configured_one(
    tmp_path: Path, database_url: str
) -> None:
    alliance = zhejiang(tmp_path / "zj")
    key = SigningKey.generate()
    rogue = f"spiffe://{alliance.trust_domain}/gateway/rogue"
    with running_gateway(alliance.config(database_url)) as gw:
        size = gw.core.store.log_size()
        with pytest.raises(PermissionError, match="gateway identity other than"):
            gw.core.members.add(
                rogue, "330100", key.public_key().raw, possession=prove_possession(key, rogue)
            )
        assert gw.core.store.log_size() == size
        assert gw.core.directory.member(rogue) is None


def test_registration_refuses_a_held_key_and_needs_the_proof_of_possession(
    tmp_path: Path, database_url: str
) -> None:
    alliance = zhejiang(tmp_path / "zj")
    shop_a, shop_b = alliance.members["shop-a"], alliance.members["shop-b"]
    squatter = f"spiffe://{alliance.trust_domain}/platform/aaa-squatter"
    with running_gateway(alliance.config(database_url), register=(shop_a, shop_b)) as gw:
        members, size = gw.core.members, gw.core.store.log_size()
        a_raw = shop_a.signing_key.public_key().raw
        # shop-a's key for another member: refused, with or without shop-a's proof.
        with pytest.raises(PermissionError, match="registered to"):
            members.add(squatter, "330100", a_raw, possession=shop_a.possession())
        with pytest.raises(PermissionError, match="registered to"):
            members.rotate_key(
                shop_b.member_id, a_raw, possession=shop_a.possession(), overlap=timedelta(0)
            )
        # Nor may a gateway's own key be registered to a member.
        own = load_signing_key(alliance.gw_dir / "signing-key.pem")
        with pytest.raises(PermissionError, match="registered to"):
            members.add(
                squatter, "330100", own.public_key().raw, possession=prove_possession(own, squatter)
            )
        # A fresh key needs its own proof, made for this member id.
        fresh = SigningKey.generate()
        for wrong in (
            prove_possession(SigningKey.generate(), squatter),  # another key's
            prove_possession(fresh, shop_a.member_id),  # for another member
            b"\x00" * 64,
            b"short",
        ):
            with pytest.raises(RecordError, match="possession"):
                members.add(squatter, "330100", fresh.public_key().raw, possession=wrong)
        assert gw.core.store.log_size() == size
        members.add(
            squatter, "330100", fresh.public_key().raw, possession=prove_possession(fresh, squatter)
        )
        assert gw.core.directory.owner(fresh.public_key().raw) == squatter
        # The gateway signs v2 records only, each key with its proof.
        stored = gw.core.store.records_of_types(sorted(MEMBER_RECORD_TYPES))
        assert {r.payload_type for r in stored} == {MEMBER_RECORD_V2}


def test_the_member_makes_the_proof_and_the_operator_registers_with_it(
    tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`alliance-gateway certs possession` on the member's side prints the proof that
    `alliance-gateway members add --possession` on the operator's side needs."""
    alliance = zhejiang(tmp_path / "zj")
    newcomer = f"spiffe://{alliance.trust_domain}/authority/national-amr"
    key_file = tmp_path / "member" / "signing-key.pem"
    generate_signing_key(key_file)
    public = tmp_path / "newcomer.pub.pem"
    config = alliance.config(database_url)
    toml = tmp_path / "gateway.toml"
    settings = (
        *("trust_domain", "gateway_name", "region_code", "database_url"),
        *("ca_file", "cert_file", "key_file", "signing_key_file"),
    )
    toml.write_text("".join(f'{k} = "{getattr(config, k)}"\n' for k in settings))
    with running_gateway(config) as gw:
        argv = ["certs", "possession", "--key", str(key_file), "--member-id", newcomer]
        assert cli_main([*argv, "--public-key-out", str(public)]) == 0
        out = capsys.readouterr().out.splitlines()
        printed = dict(line.split(": ", 1) for line in out if ": " in line)
        proof = printed["possession"]
        assert base64.b64decode(proof) == prove_possession(load_signing_key(key_file), newcomer)
        add = ["members", "add", "--config", str(toml), "--member-id", newcomer]
        add += ["--region", "110000", "--public-key", str(public), "--national"]
        assert cli_main([*add, "--possession", base64.b64encode(bytes(64)).decode()]) == 2
        assert cli_main([*add, "--possession", "not base64!"]) == 2
        assert cli_main([*add, "--possession", proof]) == 0
        eventually(lambda: gw.core.directory.member(newcomer) is not None, "registered")
        record = gw.core.directory.member(newcomer)
        assert record is not None and record.scope is AuthorityScope.NATIONAL
        # The same key for another member id: refused (a key belongs to one member).
        write_public_key(key_file, tmp_path / "again.pem")
        clone = f"spiffe://{alliance.trust_domain}/platform/clone"
        again = ["members", "add", "--config", str(toml), "--member-id", clone]
        again += ["--region", "330100", "--public-key", str(tmp_path / "again.pem")]
        assert cli_main([*again, "--possession", proof]) == 2
        # --national is for authorities only.
        shop = f"spiffe://{alliance.trust_domain}/platform/shop-n"
        shop_key = tmp_path / "shop-n.pem"
        generate_signing_key(shop_key)
        write_public_key(shop_key, tmp_path / "shop-n.pub.pem")
        shop_proof = base64.b64encode(prove_possession(load_signing_key(shop_key), shop)).decode()
        national = ["members", "add", "--config", str(toml), "--member-id", shop, "--national"]
        national += ["--region", "330100", "--public-key", str(tmp_path / "shop-n.pub.pem")]
        assert cli_main([*national, "--possession", shop_proof]) == 2
        assert gw.core.directory.member(clone) is None and gw.core.directory.member(shop) is None


def test_replicas_check_the_proofs_of_a_peers_member_record(
    tmp_path: Path, database_url: str
) -> None:
    """A v2 member record whose proof does not verify (a peer that registered a key its
    member does not hold) is refused on replication, with the batch holding it."""
    with federated_pair(tmp_path, database_url) as pair:
        gd = pair.gd
        member = f"spiffe://{gd.trust_domain}/platform/gd-other"
        key, now = SigningKey.generate(), datetime.now(UTC)
        record = MemberRecord(
            issuer=gd.alliance.gateway_id,
            member_id=member,
            role=Role.PLATFORM,
            region_code="440300",
            keys=(MemberKey(key.public_key().raw, now, possession=prove_possession(key, member)),),
            status=MemberStatus.ACTIVE,
            issued_at=now,
        )
        msg = codec.statement_to_pb(record)
        assert isinstance(msg, pb.MemberRecord)
        msg.keys[0].possession = prove_possession(SigningKey.generate(), member)  # not key's
        gd_key = load_signing_key(gd.gateway_key_file)
        env = dsse.sign(MEMBER_RECORD_V2, msg.SerializeToString(), gd_key)
        pair.gd_gw.core.ledger.append(
            [Accepted(env, env.record_id, gd.alliance.gateway_id, record, gd.origin)]
        )

        def refused() -> bool:
            (status,) = pair.zj_gw.replication.status()
            return "possession" in status.last_error and status.consecutive_failures > 0

        eventually(refused, "ZJ refuses the batch with the bad proof")
        assert pair.zj_gw.core.store.record_by_id(env.record_id) is None
