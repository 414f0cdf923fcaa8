"""QLearningAgent: the update rule by hand, learning the known optimum, logging, save/load."""

from __future__ import annotations

from pathlib import Path

import gymnasium
import numpy as np
import pytest
from gymnasium.wrappers import TimeLimit
from stable_baselines3.common.callbacks import (
    BaseCallback,
    CheckpointCallback,
    EvalCallback,
    StopTrainingOnMaxEpisodes,
)
from stable_baselines3.common.monitor import Monitor
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from rlrec.agents.tabular_q import QLearningAgent, observation_digest
from rlrec.envs.movielens import MovieLensVectorEnv
from tests.agents.tiny_world import OPTIMAL_ACTIONS, BoxEnv, OneStateEnv, tiny_dataset, tiny_env

SB3_DQN_TAGS = {
    "rollout/ep_rew_mean",
    "rollout/ep_len_mean",
    "rollout/exploration_rate",
    "train/loss",
    "time/fps",
    "time/total_timesteps",
    "time/episodes",
}


def _table_agent(learning_rate: float = 0.5, gamma: float = 0.9) -> QLearningAgent:
    return QLearningAgent(
        None, learning_rate=learning_rate, gamma=gamma, n_states=3, n_actions=6, _key_mode="env", seed=0
    )


# ----------------------------------------------------------------------------- update rule
def test_update_ordinary_transition_bootstraps_on_next_state_max():
    agent = _table_agent()
    agent.q_table[0, 1] = 1.0
    agent.q_table[2, 5], agent.q_table[2, 0] = 4.0, -1.0
    td = agent.update(0, 1, 2.0, 2, terminated=False)
    # target = 2 + 0.9 * 4 = 5.6; Q = 0.5 * 1 + 0.5 * 5.6 = 3.3
    assert agent.q_table[0, 1] == pytest.approx(3.3, abs=1e-6)
    assert td == pytest.approx(4.6)


def test_update_terminal_transition_uses_reward_alone():
    agent = _table_agent()
    agent.q_table[0, 1] = 1.0
    agent.q_table[2, 5] = 4.0
    agent.update(0, 1, 2.0, 2, terminated=True)
    assert agent.q_table[0, 1] == pytest.approx(1.5)  # 0.5 * 1 + 0.5 * 2


def test_update_with_next_mask_takes_max_over_allowed_actions():
    agent = _table_agent()
    agent.q_table[2, 5], agent.q_table[2, 3] = 4.0, 2.0
    mask = np.ones(6, dtype=bool)
    mask[5] = False
    agent.update(0, 1, 0.0, 2, terminated=False, next_mask=mask)
    assert agent.q_table[0, 1] == pytest.approx(0.5 * 0.9 * 2.0)


def _three_step_q(env: gymnasium.Env) -> float:
    agent = QLearningAgent(env, learning_rate=0.5, gamma=0.5, seed=0)
    agent.learn(3)
    assert agent.key_mode == "discrete"
    return float(agent.q_table[0, 0])


def test_truncation_bootstraps_but_termination_does_not():
    # Q1 = 0.5*0 + 0.5*(1 + 0.5*0) = 0.5; Q2 = 0.25 + 0.5*(1 + 0.25) = 0.875
    # step 3 truncated: 0.4375 + 0.5*(1 + 0.4375) = 1.15625; terminated: 0.4375 + 0.5*1 = 0.9375
    assert _three_step_q(TimeLimit(OneStateEnv(terminate=False), 3)) == pytest.approx(1.15625)
    assert _three_step_q(OneStateEnv(terminate=True)) == pytest.approx(0.9375)


# ---------------------------------------------------------------------------------- learning
def test_learns_the_known_optimal_policy_on_tiny_movielens():
    env = tiny_env(user_order="random")  # sequential order would restart every episode at user 1
    agent = QLearningAgent(env, learning_rate=0.5, gamma=0.0, exploration_fraction=0.6, seed=3)
    assert agent.key_mode == "env" and agent.q_table.shape == (4, 12)
    agent.learn(1500)
    np.testing.assert_array_equal(agent.predict_state(np.arange(4)), OPTIMAL_ACTIONS)
    # γ = 0: Q(s, a*) -> the best rating (each update halves the gap: α = 0.5).
    np.testing.assert_allclose(agent.q_table[np.arange(4), OPTIMAL_ACTIONS], [5.0, 4.5, 4.0, 5.0], atol=0.1)
    observations = env.unwrapped.observations(np.arange(4))
    actions, state = agent.predict(observations)
    assert state is None
    np.testing.assert_array_equal(actions, OPTIMAL_ACTIONS)
    single, _ = agent.predict(observations[2])
    assert int(single) == OPTIMAL_ACTIONS[2]


def test_same_seed_same_table_and_other_seed_differs():
    tables = []
    for seed in (7, 7, 8):
        agent = QLearningAgent(tiny_env(), learning_rate=0.5, gamma=0.9, seed=seed)
        agent.learn(500)
        tables.append(agent.q_table)
    np.testing.assert_array_equal(tables[0], tables[1])
    assert not np.array_equal(tables[0], tables[2])


def test_masked_exploration_never_picks_a_forbidden_action():
    env = tiny_env(mask_recommended=True)
    agent = QLearningAgent(env, use_masking=True, exploration_fraction=1.0, exploration_final_eps=1.0, seed=0)
    seen: list[tuple[int, np.ndarray]] = []

    class Record(BaseCallback):
        def _on_step(self) -> bool:
            seen.append((int(self.locals["actions"][0]), self.locals["masks"][0].copy()))
            return True

    agent.learn(200, callback=Record())
    assert len(seen) == 200
    assert all(mask[action] for action, mask in seen)


def test_hash_keys_for_box_observations_are_stable():
    env = BoxEnv()
    agent = QLearningAgent(env, n_states=64, seed=0)
    assert agent.key_mode == "hash" and agent.q_table.shape == (64, 3)
    obs = np.array([2.0, 1.0], dtype=np.float32)
    # The key is the BLAKE2b digest, not Python's per-process hash().
    assert agent._key(obs, {}) == observation_digest(obs) % 64
    agent.learn(100)
    assert np.abs(agent.q_table).sum() > 0


def test_an_env_without_states_is_hashed_only_when_asked() -> None:
    with pytest.raises(ValueError, match="pass n_states= to hash"):
        QLearningAgent(BoxEnv())


def test_custom_state_key_must_stay_in_the_table():
    agent = QLearningAgent(BoxEnv(), state_key=lambda obs, info: int(obs[0]) + 10, n_states=8)
    with pytest.raises(ValueError, match="outside the table"):
        agent.learn(5)


# ------------------------------------------------------------------------- SB3 plumbing
def test_callbacks_see_sb3_locals_and_can_stop_training():
    agent = QLearningAgent(tiny_env(), seed=0)
    stop = StopTrainingOnMaxEpisodes(max_episodes=3)
    agent.learn(10_000, callback=[stop])
    assert stop.n_episodes == 3  # counted from locals["dones"], as in SB3
    # Stopped on the step that ended the 3rd episode, before counting it (SB3's order).
    assert agent._episode_num == 2
    assert agent.num_timesteps < 10_000


def test_progress_bar_and_reset_num_timesteps_false():
    agent = QLearningAgent(tiny_env(), seed=0)
    agent.learn(50, progress_bar=True)
    agent.learn(30, reset_num_timesteps=False)
    assert agent.num_timesteps == 80


def test_event_file_has_sb3_dqn_tags_and_hand_computed_loss(tmp_path: Path):
    env = TimeLimit(OneStateEnv(terminate=False), 3)
    agent = QLearningAgent(env, learning_rate=0.5, gamma=0.5, tensorboard_log=str(tmp_path), seed=0)
    agent.learn(3, log_interval=1)
    run = tmp_path / "qlearning_1"
    assert run.is_dir()
    events = EventAccumulator(str(run))
    events.Reload()
    assert SB3_DQN_TAGS <= set(events.Tags()["scalars"])
    # |TD errors| of the three steps: 1, 1.25 - 0.5, 1.4375 - 0.875 (see the truncation test).
    loss = events.Scalars("train/loss")[0]
    assert loss.value == pytest.approx((1.0 + 0.75 + 0.5625) / 3)
    assert loss.step == 3
    assert events.Scalars("rollout/ep_rew_mean")[0].value == pytest.approx(3.0)
    assert events.Scalars("rollout/ep_len_mean")[0].value == pytest.approx(3.0)
    assert "_hparams_/experiment" in events.PluginTagToContent("hparams")


# ----------------------------------------------------------------------------- save / load
def test_save_load_round_trip_gives_identical_predictions(tmp_path: Path):
    env = tiny_env()
    agent = QLearningAgent(env, learning_rate=0.5, gamma=0.5, seed=1)
    agent.learn(400)
    path = agent.save(tmp_path / "model")
    assert path.suffix == ".npz"
    with np.load(path, allow_pickle=False) as archive:  # no pickle inside
        assert {"q_table", "hparams", "state_digests"} <= set(archive.files)

    observations = env.unwrapped.observations(np.arange(4))
    for loaded in (QLearningAgent.load(path, env=tiny_env()), QLearningAgent.load(path)):
        np.testing.assert_array_equal(loaded.q_table, agent.q_table)
        assert loaded.gamma == 0.5 and loaded.learning_rate == 0.5 and loaded.num_timesteps == 400
        # Without its env the loaded model maps observations to states through the saved digests.
        np.testing.assert_array_equal(loaded.predict(observations)[0], agent.predict(observations)[0])


def test_load_rejects_an_env_of_another_size(tmp_path: Path):
    agent = QLearningAgent(None, n_states=3, n_actions=5, _key_mode="env")
    path = agent.save(tmp_path / "q.npz")
    with pytest.raises(ValueError, match="does not fit"):
        QLearningAgent.load(path, env=tiny_env())


def test_predict_rejects_an_observation_of_no_state():
    agent = QLearningAgent(tiny_env(), seed=0)
    with pytest.raises(ValueError, match="matches no state"):
        agent.predict(np.full(12, 9.0, dtype=np.float32))


def test_vector_env_updates_from_every_real_transition():
    env = MovieLensVectorEnv(tiny_dataset(), num_envs=4, reward_mode="rating", user_order="random")
    agent = QLearningAgent(env, learning_rate=0.5, gamma=0.0, exploration_fraction=0.6, seed=0)
    agent.learn(2000)
    assert agent.num_timesteps == 2000
    np.testing.assert_array_equal(agent.predict_state(np.arange(4)), OPTIMAL_ACTIONS)


def test_sb3_eval_and_checkpoint_callbacks_work(tmp_path: Path):
    eval_env = Monitor(tiny_env(max_episode_steps=10))
    evaluation = EvalCallback(eval_env, eval_freq=50, n_eval_episodes=2, log_path=str(tmp_path), verbose=0)
    checkpoint = CheckpointCallback(save_freq=100, save_path=str(tmp_path), name_prefix="q")
    agent = QLearningAgent(tiny_env(), seed=0)
    agent.learn(200, callback=[evaluation, checkpoint])
    assert evaluation.evaluations_timesteps == [50, 100, 150, 200]
    saved = QLearningAgent.load(tmp_path / "q_200_steps.zip")
    np.testing.assert_array_equal(saved.q_table, agent.q_table)
