"""RLlib callbacks of MADDPG, for RLlib's own sampler (`use_lockstep_sampler=False`).

The lockstep sampler reads an env's task metrics itself; with RLlib's sampler
this callback copies `env.episode_metrics()` (e.g. the paper's MPE metrics,
envs/mpe_metrics.py) into the episode's custom metrics. Subclass it, or call
its `on_episode_end`, if you bring your own callbacks.
"""

from ray.rllib.callbacks.callbacks import RLlibCallback


class MADDPGCallbacks(RLlibCallback):
    def on_episode_end(self, *, episode, env_index=None, base_env=None, **kwargs) -> None:
        if base_env is None or env_index is None:
            return
        env = base_env.get_sub_environments()[env_index]
        if hasattr(env, "episode_metrics"):
            episode.custom_metrics.update(env.episode_metrics())
