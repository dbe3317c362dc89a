"""MachineState: the resumable position."""

from __future__ import annotations

import json
import pickle

import pytest

from workflow.engine import MachineState


def test_a_new_state_is_before_the_first_token_at_the_first_task() -> None:
    state = MachineState()
    assert (state.token_pos, state.callback_pos, state.current_object_processed) == (-1, [0], False)


def test_the_constructor_copies_the_position_list() -> None:
    position = [1, 2]
    state = MachineState(3, position)
    position.append(9)
    assert state.callback_pos == [1, 2]
    assert state.token_pos == 3


def test_reset_goes_back_to_the_start() -> None:
    state = MachineState(4, [2, 1])
    state.current_object_processed = True
    state.reset()
    assert state == MachineState()


def test_partial_resets() -> None:
    state = MachineState(4, [2, 1])
    state.token_pos_reset()
    assert state.token_pos == -1
    assert state.callback_pos == [2, 1]
    state.callback_pos_reset()
    assert state.callback_pos == [0]


def test_token_pos_below_minus_one_is_refused() -> None:
    state = MachineState()
    with pytest.raises(ValueError, match="token_pos must be -1 or more, got -2"):
        state.token_pos = -2
    with pytest.raises(TypeError, match="token_pos must be an int"):
        state.token_pos = "1"  # type: ignore[assignment]


@pytest.mark.parametrize("bad", [3, "12", [], [1, "2"], [1.0], None])
def test_callback_pos_must_be_a_list_of_int(bad: object) -> None:
    state = MachineState()
    with pytest.raises(TypeError, match="callback_pos must be"):
        state.callback_pos = bad  # type: ignore[assignment]


def test_callback_pos_accepts_a_tuple_and_stores_a_list() -> None:
    state = MachineState()
    state.callback_pos = (1, 0)
    assert state.callback_pos == [1, 0]


def test_state_round_trips_through_json_and_pickle() -> None:
    state = MachineState(2, [1, 3, 0])
    state.current_object_processed = True
    assert MachineState.from_dict(json.loads(json.dumps(state.to_dict()))) == state
    assert pickle.loads(pickle.dumps(state)) == state
    assert set(state.__getstate__()) == set(MachineState._state_keys)


def test_state_repr_and_equality() -> None:
    assert repr(MachineState(1, [2])) == "MachineState(token_pos=1, callback_pos=[2])"
    assert MachineState() != "state"
