"""`@frozen` records: the frozen dataclasses they stand for, processed only when first used."""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import field
from typing import Any

import pytest

from tenant_billing.records import build_record, frozen, is_record, record_fields
from tenant_billing.stripe_credentials import StripeCredentials


def declare() -> tuple[type, type]:
    @frozen(kw_only=True)
    class Base:
        name: str
        amount: int = 0

    @frozen(kw_only=True)
    class Child(Base):
        limit: str = field(default="sites", metadata={"alias": "siteLimit"})

    return Base, Child


def test_a_record_is_not_processed_until_it_is_used() -> None:
    base, child = declare()
    assert is_record(base) and not dataclasses.is_dataclass(base)
    instance = child(name="pro", amount=3)
    # The child's first instance built it and its record base.
    assert dataclasses.is_dataclass(base) and dataclasses.is_dataclass(child)
    assert (instance.name, instance.amount, instance.limit) == ("pro", 3, "sites")


def test_a_built_record_is_a_frozen_keyword_only_dataclass() -> None:
    _, child = declare()
    first, same = child(name="pro"), child(name="pro")
    assert first == same and hash(first) == hash(same) and first != child(name="starter")
    assert repr(first).endswith("Child(name='pro', amount=0, limit='sites')")
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.name = "x"
    with pytest.raises(TypeError):
        child("pro")  # keyword-only
    assert dataclasses.replace(first, amount=5).amount == 5


def test_its_fields_are_there_before_any_instance() -> None:
    base, child = declare()
    assert [(f.name, f.metadata.get("alias")) for f in record_fields(child)] == [
        ("name", None),
        ("amount", None),
        ("limit", "siteLimit"),
    ]
    assert build_record(base) is base and dataclasses.is_dataclass(base)


def test_positional_records_and_hidden_values_keep_their_options() -> None:
    credentials = StripeCredentials("sk_test_secret", ("whsec_secret",))
    assert "sk_test_secret" not in repr(credentials) and "whsec_secret" not in repr(credentials)


def test_threads_instantiating_a_new_record_together_all_get_one() -> None:
    _, child = declare()
    barrier = threading.Barrier(8)
    made: list[object] = []

    def make() -> None:
        barrier.wait()
        made.append(child(name="pro"))

    threads = [threading.Thread(target=make) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(made) == 8 and all(instance == made[0] for instance in made)


def test_the_generic_methods_do_what_the_dataclass_would() -> None:
    @frozen
    class Counts:
        name: str
        limit: int = 1
        counts: dict[str, int] = field(default_factory=dict, hash=False)
        secret: str = field(default="s", repr=False, compare=False)

    first, second = Counts("a"), Counts("a")
    # A fresh default per instance, as default_factory gives.
    assert first.counts == {} and first.counts is not second.counts
    assert first == Counts("a", 1, {}, "other") and first != Counts("a", 2)
    assert hash(first) == hash(Counts("a", 1, {"x": 1}))  # counts is not hashed
    assert "secret" not in repr(first) and repr(first).endswith("Counts(name='a', limit=1, counts={})")
    match Counts("b", 3):
        case Counts(name, limit):
            assert (name, limit) == ("b", 3)
    with pytest.raises(TypeError, match="missing required arguments: 'name'"):
        Counts()  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword argument 'other'"):
        Counts("a", other=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="multiple values for argument 'name'"):
        Counts("a", name="b")  # type: ignore[misc]
    with pytest.raises(TypeError, match="takes 4 positional arguments but 5 were given"):
        Counts("a", 1, {}, "s", 5)  # type: ignore[call-arg]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del first.name
    assert first.__eq__(("a", 1, {}, "s")) is NotImplemented and Counts.__doc__ == "Counts(name, limit, counts, secret)"


def test_a_positional_field_without_default_after_one_with_is_refused_on_build() -> None:
    @frozen
    class Misordered:
        limit: int = 1
        name: str  # type: ignore[misc]

    with pytest.raises(TypeError, match="non-default argument 'name' follows default argument 'limit'"):
        record_fields(Misordered)


def test_building_a_record_writes_no_source() -> None:
    """What made records cheap: dataclass is asked for no generated method (each one is source it
    compiles at runtime, which no bytecode cache saves)."""
    _, child = declare()
    record_fields(child)
    params = child.__dataclass_params__  # type: ignore[attr-defined]
    assert (params.init, params.repr, params.eq, params.frozen) == (False, False, False, False)
    assert vars(child)["__init__"].__module__ == "tenant_billing.records"


def test_a_record_cannot_define_what_its_generic_constructor_would_skip() -> None:
    with pytest.raises(TypeError, match="cannot define"):

        @frozen
        class Checked:
            amount: int

            def __post_init__(self) -> None:
                raise ValueError

    @frozen
    class Computed:
        amount: int
        label: str = field(init=False, default="x")

    with pytest.raises(TypeError, match="init=False"):
        record_fields(Computed)


def test_a_method_the_record_defines_itself_stays() -> None:
    @frozen
    class Shown:
        amount: int

        def __repr__(self) -> str:
            return "shown"

    assert repr(Shown(1)) == "shown" and Shown(1) == Shown(1)


def test_every_record_of_the_package_builds() -> None:
    """Declaration errors (a field order, a mutable default) surface when a class is first used:
    this finds them for every record before a request does."""
    import importlib
    import pkgutil

    import tenant_billing

    modules = [importlib.import_module(f"tenant_billing.{info.name}") for info in pkgutil.iter_modules(tenant_billing.__path__)]
    records = {value for module in modules for value in vars(module).values() if isinstance(value, type) and is_record(value)}
    assert len(records) > 50
    for record in records:
        assert record_fields(record) == dataclasses.fields(record)


def test_a_thread_never_gets_a_half_built_record(monkeypatch: pytest.MonkeyPatch) -> None:
    _, child = declare()
    real = dataclasses.dataclass
    building = threading.Event()

    def slow(cls: type, **options: Any) -> Any:
        built: Any = real(cls, **options)
        if cls is child:
            building.set()
            time.sleep(0.1)  # a thread switch while the class is being built
        return built

    monkeypatch.setattr(dataclasses, "dataclass", slow)
    first: list[object] = []
    builder = threading.Thread(target=lambda: first.append(child(name="pro", amount=2)))
    builder.start()
    building.wait()
    meanwhile = child(name="pro", amount=2)  # while the other thread is building the class
    builder.join()
    # Every field set on the instance itself (a default is also a class attribute, which would hide a miss).
    assert vars(meanwhile) == vars(first[0]) == {"name": "pro", "amount": 2, "limit": "sites"}
