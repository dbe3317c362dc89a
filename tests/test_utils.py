"""classproperty / staticproperty: the descriptors the hooks are declared with."""

from __future__ import annotations

from workflow.utils import classproperty, staticproperty


class Base:
    @classproperty
    def name(cls) -> str:
        """The class name."""
        return cls.__name__

    @staticproperty
    def answer() -> int:
        """A constant."""
        return 42


class Child(Base):
    pass


def test_classproperty_is_computed_from_the_owner_class() -> None:
    assert Base.name == "Base"
    assert Child.name == "Child"
    assert Child().name == "Child"
    assert Base.__dict__["name"].__get__(Child()) == "Child"
    assert Base.__dict__["name"].__doc__ == "The class name."


def test_staticproperty_takes_no_argument() -> None:
    assert Base.answer == 42
    assert Child().answer == 42
    assert Base.__dict__["answer"].__doc__ == "A constant."
