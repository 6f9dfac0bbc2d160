"""MADDPGConfig: MADDPG's settings and their checks.

Every key has a default (`__init__`, the paper's or its original code's
value), a keyword argument of one builder method with its paper symbol, and a
range check in `validate()`; README's configuration table lists the same keys
(tests/unit/test_config_docs.py checks that they agree). The algorithm's keys
go to `training()`; the infrastructure keys go to RLlib's builder for their
kind, as RLlib's own keys do: `env_runners()` (how samples are collected),
`learners()` (where updates run), `fault_tolerance()` (what happens while env
runners are down) and `framework()` (torch's threads). `training()` still
takes those, with a deprecation warning naming the builder. `validate()` also
reads the joint agent order and the agents of each policy from the env
(agents.py).

This module holds configuration only: it imports neither the algorithm nor
the policy, not even inside a function (maddpg.py and policy.py import it).
The algorithm is named by its Tune registration, "MADDPG" (build_algo looks
it up); RLlib takes the policy class from the algorithm.
"""

import difflib
from typing import Any, Dict, List, Optional, Union

import numpy as np

from ray.rllib.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from ray.rllib.evaluation.rollout_worker import RolloutWorker
from ray.rllib.utils import deprecation_warning
from ray.rllib.utils.annotations import override
from ray.tune.result import STDERR_FILE, STDOUT_FILE, TRIAL_INFO

# AgentToPolicy: checkpoints written before agents.py existed name it here.
from rllib_maddpg.agents import AgentToPolicy, resolve_agents  # noqa: F401
from rllib_maddpg.callbacks import MADDPGCallbacks
from rllib_maddpg.core.networks import ACTIVATIONS, LAYER_INITS
from rllib_maddpg.ray_compat import translate_config_key
from rllib_maddpg.sampler import LockstepEnvRunner

# Infrastructure keys that training() took before they moved to RLlib's builder
# for their kind: key -> that builder. training() still accepts them (deprecated).
MOVED_FROM_TRAINING = {
    "use_lockstep_sampler": "env_runners",
    "overlap_sampling_and_learning": "env_runners",
    "per_agent_learners": "learners",
    "data_parallel_learners": "learners",
    "learner_resources": "learners",
    "sample_on_driver_when_runners_down": "fault_tolerance",
    "env_runner_wait_timeout_s": "fault_tolerance",
    "torch_num_threads": "framework",
}


class MADDPGConfig(AlgorithmConfig):
    """Configuration of MADDPG; defaults follow the paper and its code.

    Example:
        >>> from rllib_maddpg import MADDPGConfig
        >>> config = (
        ...     MADDPGConfig()
        ...     .environment("mpe/simple_adversary")
        ...     .training(actor_lr=1e-2, critic_lr=1e-2, tau=0.01)
        ... )
        >>> algo = config.build_algo()
        >>> algo.train()

    With no `multi_agent(policies=...)`, one policy per agent is built from
    the env's spaces, named after the agent (`str(agent_id)`), in the env's
    `possible_agents` order. A policy that several agents are mapped to is
    shared by them: one actor and one critic for the group (policy.py).
    """

    def __init__(self, algo_class=None):
        # The registered name (rllib_maddpg/__init__.py registers "MADDPG" with
        # Tune): build_algo() looks it up, so this module need not import
        # maddpg.py, which imports this one.
        super().__init__(algo_class=algo_class or "MADDPG")
        # RLlib's validate() picks `simple_optimizer` by asking
        # `algo_class.get_default_policy_class()`, which a registered name
        # cannot answer. MADDPG never uses RLlib's multi-GPU train op (its
        # training_step updates through its own learners), and RLlib would pick
        # True anyway for a TorchPolicyV2 (not a TorchPolicy); set it here.
        self.simple_optimizer = True
        # Old API stack: MADDPG is a TorchPolicyV2. Setting exploration_config
        # first keeps RLlib from warning that it has none to restore; MADDPG's
        # own exploration (Gaussian noise, Gumbel-Softmax) lives in the policy.
        self.exploration_config = {"type": "StochasticSampling"}
        self.api_stack(
            enable_rl_module_and_learner=False, enable_env_runner_and_connector_v2=False
        )
        self.framework_str = "torch"
        self.callbacks_class = MADDPGCallbacks
        # The policy returns env actions directly (no [-1, 1] unsquashing).
        self.normalize_actions = False
        self.clip_actions = False
        self.rollout_fragment_length = 100
        self.min_sample_timesteps_per_iteration = 2500

        # Paper / original-code defaults.
        self.actor_lr = 1e-2
        self.critic_lr = 1e-2
        self.gamma = 0.95
        self.tau = 0.01
        self.train_batch_size = 1024
        self.num_steps_sampled_before_learning_starts = 1024 * 25
        self.replay_buffer_config = {"capacity": int(1e6)}
        self.env_steps_per_update = 100
        self.actor_hiddens = [64, 64]
        self.critic_hiddens = [64, 64]
        self.actor_hidden_activation = "relu"
        self.critic_hidden_activation = "relu"
        self.grad_norm_clipping = 0.5
        self.grad_norm_clipping_scope = "variable"
        self.layer_init = "glorot_uniform"
        self.standardize_rewards = False
        self.n_step = 1
        self.torch_num_threads = 1
        self.independent_minibatches = False
        self.actor_regularization = 1e-3
        self.use_local_critic = False
        self.gumbel_softmax_temperature = 1.0
        self.gumbel_softmax_hard = False
        self.gumbel_target_noise = True
        self.simplex_box_actions = True
        self.exploration_noise_scale = 0.1
        self.exploration_noise_final_scale = None
        self.exploration_noise_anneal_timesteps = None
        self.store_buffer_in_checkpoints = False
        self.use_lockstep_sampler = True
        self.overlap_sampling_and_learning = True
        self.infer_other_policies = False
        self.policy_inference_entropy = 1e-3
        self.num_subpolicies = 1
        self.ensemble_shared_draw = []
        self.subpolicy_for_acting = None
        self.per_agent_learners = False
        self.data_parallel_learners = 1
        self.learner_resources = {"CPU": 1}
        self.batched_update = "off"
        self.shared_policy_agent_id = False
        self.strict_lockstep = None
        # MATD3 (Ackermann et al. 2019), off by default: MADDPG as in the paper.
        self.twin_critics = False
        self.target_action_noise = 0.0
        self.target_action_noise_clip = 0.5
        self.actor_update_delay = 1
        # Fault tolerance (fault_tolerance.py): what a training step does while
        # no remote env runner is healthy (e.g. their node is lost).
        self.sample_on_driver_when_runners_down = True
        self.env_runner_wait_timeout_s = 60.0

        # Derived from the env by `validate()`: the joint agent order, and what
        # the env said about its agents (cached: building an env can be slow).
        self._maddpg_agents = None
        self._maddpg_probe = None
        # Whether the critics take alive flags and masks (strict_lockstep resolved).
        self._maddpg_masked = False

    @override(AlgorithmConfig)
    def training(
        self,
        *,
        actor_lr: Optional[float] = NotProvided,
        critic_lr: Optional[float] = NotProvided,
        tau: Optional[float] = NotProvided,
        num_steps_sampled_before_learning_starts: Optional[int] = NotProvided,
        replay_buffer_config: Optional[Dict[str, Any]] = NotProvided,
        env_steps_per_update: Optional[int] = NotProvided,
        actor_hiddens: Optional[List[int]] = NotProvided,
        critic_hiddens: Optional[List[int]] = NotProvided,
        actor_hidden_activation: Optional[str] = NotProvided,
        critic_hidden_activation: Optional[str] = NotProvided,
        grad_norm_clipping: Optional[float] = NotProvided,
        grad_norm_clipping_scope: Optional[str] = NotProvided,
        layer_init: Optional[str] = NotProvided,
        standardize_rewards: Optional[bool] = NotProvided,
        n_step: Optional[int] = NotProvided,
        independent_minibatches: Optional[bool] = NotProvided,
        actor_regularization: Optional[float] = NotProvided,
        use_local_critic: Optional[Union[bool, List[str]]] = NotProvided,
        gumbel_softmax_temperature: Optional[float] = NotProvided,
        gumbel_softmax_hard: Optional[bool] = NotProvided,
        gumbel_target_noise: Optional[bool] = NotProvided,
        simplex_box_actions: Optional[bool] = NotProvided,
        exploration_noise_scale: Optional[float] = NotProvided,
        exploration_noise_final_scale: Optional[float] = NotProvided,
        exploration_noise_anneal_timesteps: Optional[int] = NotProvided,
        store_buffer_in_checkpoints: Optional[bool] = NotProvided,
        infer_other_policies: Optional[Union[bool, List[str]]] = NotProvided,
        policy_inference_entropy: Optional[float] = NotProvided,
        num_subpolicies: Optional[int] = NotProvided,
        ensemble_shared_draw: Optional[List[List[str]]] = NotProvided,
        subpolicy_for_acting: Optional[int] = NotProvided,
        shared_policy_agent_id: Optional[bool] = NotProvided,
        strict_lockstep: Optional[bool] = NotProvided,
        twin_critics: Optional[bool] = NotProvided,
        target_action_noise: Optional[float] = NotProvided,
        target_action_noise_clip: Optional[float] = NotProvided,
        actor_update_delay: Optional[int] = NotProvided,
        **kwargs,
    ) -> "MADDPGConfig":
        """Sets MADDPG's training settings.

        `gamma` (discount gamma, default 0.95) and `train_batch_size` (the
        minibatch size S drawn from D per update, default 1024) are RLlib's
        own keys and are set here too. The infrastructure keys have their own
        builders: `env_runners()`, `learners()`, `fault_tolerance()`,
        `framework()`; given here, they are set, with a deprecation warning.

        MATD3 (Ackermann et al. 2019, "Reducing Overestimation Bias in
        Multi-Agent Domains Using Double Centralized Critics") is
        `training(twin_critics=True, target_action_noise=0.2,
        actor_update_delay=2)`: MADDPG with TD3's twin critics, target policy
        smoothing and delayed policy updates (core/update.py). Each of the
        three keys also works alone.

        Args:
            actor_lr: learning rate of each actor mu_i (Adam; paper: 1e-2).
            critic_lr: learning rate of each critic Q_i (Adam; paper: 1e-2).
            tau: target-network update rate tau in
                theta' <- tau theta + (1 - tau) theta' (paper: 0.01). In (0, 1].
            num_steps_sampled_before_learning_starts: env steps collected into
                D before the first update (original code: 1024 * 25).
            replay_buffer_config: {"capacity": size of the replay buffer D in env
                steps (paper: 1e6)}.
            env_steps_per_update: one update of every agent per this many env
                steps (original code: 100).
            actor_hiddens: hidden layer sizes of mu_i (paper: [64, 64]).
            critic_hiddens: hidden layer sizes of Q_i (paper: [64, 64]).
            actor_hidden_activation: activation of mu_i's hidden layers: one of
                "relu" (paper), "tanh", "elu", "leaky_relu".
            critic_hidden_activation: activation of Q_i's hidden layers (same choices).
            grad_norm_clipping: max gradient norm in each actor and critic
                update, or None for no clipping (original code: 0.5).
            grad_norm_clipping_scope: what `grad_norm_clipping` bounds:
                "variable", the norm of each weight and bias tensor on its own
                (the original code's tf.clip_by_norm per variable), or
                "network", the global norm of all of a net's gradients.
            layer_init: initialisation of every Linear layer (actors, critics,
                policy approximators): "glorot_uniform", Glorot-uniform weights
                and zero biases (the original code's TF default), or
                "torch_default", nn.Linear's own.
            standardize_rewards: replace r_i in each minibatch by
                (r_i - mean_D(r_i)) / std_D(r_i), the moments taken over all
                rows of the replay buffer D (as maddpg-pytorch and EPyMARL do;
                not in the paper). Shifting by a constant keeps the optimal
                policy only while episodes end by time limits (as in MPE).
            n_step: n, the horizon of the critics' TD target:
                y_i = sum_{j<k} gamma^j r_i(t+j) + gamma^k (1 - d_i) Q'_i(x_{t+k}, a'),
                k = min(n, steps left in the episode or the sampled fragment),
                a' from the target actors at learn time (core/nstep.py; not in
                the paper, which uses n = 1). Rewards summed over the steps
                after t follow the behaviour policy (the usual n-step bias
                off-policy). 1: the paper's one-step target. >= 1.
            independent_minibatches: each agent updates on its own minibatch
                from D, drawn (with fresh target actions) just before its update,
                as the original code did; False: all agents of an update round
                share one minibatch. Local learner only.
            actor_regularization: weight of the penalty mean(pre-activation^2)
                on the actor's output in its loss (original code: 1e-3).
            use_local_critic: True to give every policy a local critic
                Q_i(o_i, a_i) (DDPG, the paper's baseline), or a list of policy
                IDs that get one (e.g. one team DDPG, the other MADDPG).
            gumbel_softmax_temperature: temperature of the Gumbel-Softmax
                relaxation of categorical actions (original code: 1.0). > 0.
            gumbel_softmax_hard: feed the critic one-hot samples with
                straight-through gradients instead of the relaxed sample
                (original code: False).
            gumbel_target_noise: the target actions a'_j of the critic target
                are Gumbel-Softmax samples of mu'_j(o'_j) (original code: True);
                False: the noise-free softmax, a deterministic target policy as
                in DDPG.
            simplex_box_actions: read Box actions that the env marks as
                probability vectors (MPE's continuous mode) with Gumbel-Softmax,
                as the original code did. False: tanh + Gaussian noise.
            exploration_noise_scale: std of the Gaussian noise added to Box
                actions, in units of half the action range. >= 0.
            exploration_noise_final_scale: anneal the noise std linearly to this
                value over `exploration_noise_anneal_timesteps` env steps; None
                keeps it constant.
            exploration_noise_anneal_timesteps: env steps of the annealing. > 0
                when `exploration_noise_final_scale` is set.
            store_buffer_in_checkpoints: also save the replay buffer's contents in
                checkpoints (large: up to capacity rows).
            infer_other_policies: policy inference (paper section 4.2): True, or
                a list of policy IDs, whose agents learn approximations
                mu_hat_i^j of the other agents' policies from replayed actions
                and use them (not the true target actors) for their critic
                targets. The approximations learn at `actor_lr`.
            policy_inference_entropy: lambda, the entropy bonus weight of the
                approximation loss (eq. 7). >= 0.
            num_subpolicies: K, the size of each agent's policy ensemble (paper
                section 4.3; set per policy through a PolicySpec's config). At
                each episode start every agent draws one of its K sub-policies
                uniformly; sub-policy k learns from its own buffer D_i^(k) (the
                rows where it acted), with its gradient scaled by 1/K (eq. 9);
                the agent's one critic learns from all rows. Needs the lockstep
                sampler. >= 1.
            ensemble_shared_draw: groups of policy IDs (e.g. a team) that draw
                one shared sub-policy index per episode instead of one each;
                the policies of a group need the same K.
            subpolicy_for_acting: act with this sub-policy instead of drawing
                one per episode (e.g. in `evaluation_config`); None draws.
            shared_policy_agent_id: for a policy that several agents share
                (multi_agent's policy_mapping_fn maps them to it), append the
                one-hot of the agent's index within that group to the shared
                actor's input o_i and to the shared critic's input (x, a, id_i);
                False: the actor sees o_i alone (agents of one group then act
                alike on alike observations). No effect on unshared policies.
            strict_lockstep: True: every agent acts at every step until the
                episode ends (the paper's MPE), and an agent that is absent
                earlier is an error. False: agents may finish early, die,
                leave or arrive late; an absent agent gets no actions, its
                slots in the joint rows are zeros, each critic Q_i also sees
                the N alive flags of x and of x', and rows where agent i is
                absent train neither Q_i nor mu_i (a'_j of an agent absent
                from x' is zeroed too). None (default): what the env declares
                (its `strict_lockstep` attribute: True for `mpe/<scenario>`),
                else False.
            twin_critics: MATD3's double centralized critics: each agent i has
                two critics Q^1_i, Q^2_i (and targets), both regressed on
                y_i = r_i + gamma (1 - d_i) min(Q^1'_i(x', a'), Q^2'_i(x', a'))
                with one optimizer; the actor ascends Q^1_i. False: MADDPG's
                one critic.
            target_action_noise: sigma of MATD3's target policy smoothing:
                a'_j = clip(mu'_j(o'_j) + clip(N(0, sigma^2), -c, c), -1, 1)
                in the critic's [-1, 1] scale (MATD3: 0.2). Box (tanh) actions
                only: a Gumbel-Softmax target action is already a sample
                (`gumbel_target_noise`) and is left as it is. 0: off. >= 0.
            target_action_noise_clip: c, the bound on that noise (TD3: 0.5). > 0.
            actor_update_delay: d: the actor mu_i and the target networks are
                updated every d-th critic update of agent i (MATD3: 2), the
                critic every update. Counted by the policy's `num_grad_updates`,
                which checkpoints keep. 1: every update (MADDPG). >= 1.

        Returns:
            This updated MADDPGConfig object.
        """
        own = dict(locals())
        moved = {k: kwargs.pop(k) for k in list(kwargs) if k in MOVED_FROM_TRAINING}
        super().training(**kwargs)
        self._set_given(own)
        if moved:
            self._set_moved_keys(moved)
        return self

    def _set_given(self, args: Dict[str, Any]) -> None:
        """Sets MADDPG's keys that a builder method was given (its locals(): the
        keyword arguments it names, not RLlib's **kwargs)."""
        for key, value in args.items():
            if key not in ("self", "kwargs", "__class__", "framework") and value is not NotProvided:
                setattr(self, key, value)

    def _set_moved_keys(self, moved: Dict[str, Any]) -> None:
        """Sets infrastructure keys given to training() through their own
        builders, with one deprecation warning that names them."""
        by_builder: Dict[str, Dict[str, Any]] = {}
        for key, value in moved.items():
            by_builder.setdefault(MOVED_FROM_TRAINING[key], {})[key] = value
        deprecation_warning(
            old="MADDPGConfig.training(" + ", ".join(f"{k}=..." for k in moved) + ")",
            new="MADDPGConfig" + "".join(
                f".{builder}(" + ", ".join(f"{k}=..." for k in keys) + ")"
                for builder, keys in by_builder.items()),
            error=False,
        )
        for builder, keys in by_builder.items():
            getattr(self, builder)(**keys)

    @override(AlgorithmConfig)
    def env_runners(
        self,
        *,
        use_lockstep_sampler: Optional[bool] = NotProvided,
        overlap_sampling_and_learning: Optional[bool] = NotProvided,
        **kwargs,
    ) -> "MADDPGConfig":
        """Sets how MADDPG collects samples, and RLlib's env runner settings.

        Args:
            use_lockstep_sampler: sample with MADDPG's lockstep sampler (all
                sub-envs of a runner step together, one batched actor call per
                agent per step; several times faster). False: RLlib's generic
                sampler, which also runs RLlib's per-episode callbacks.
            overlap_sampling_and_learning: with remote env runners, keep one
                sample request per runner in flight while the driver learns, so
                sampling and learning run at the same time (actors then act with
                weights up to two fragments old). False: sample, then learn.
            **kwargs: RLlib's own `AlgorithmConfig.env_runners()` arguments
                (num_env_runners, num_envs_per_env_runner, rollout_fragment_length, ...).

        Returns:
            This updated MADDPGConfig object.
        """
        own = dict(locals())
        super().env_runners(**kwargs)
        self._set_given(own)
        return self

    @override(AlgorithmConfig)
    def learners(
        self,
        *,
        per_agent_learners: Optional[bool] = NotProvided,
        data_parallel_learners: Optional[int] = NotProvided,
        learner_resources: Optional[Dict[str, float]] = NotProvided,
        batched_update: Optional[str] = NotProvided,
        **kwargs,
    ) -> "MADDPGConfig":
        """Sets where MADDPG's updates run: on the driver (default) or on Ray
        learner actors (learners.py, docs/learners.md).

        RLlib's own `learners()` arguments (num_learners, num_gpus_per_learner,
        ...) configure the new API stack's LearnerGroup, which MADDPG (old API
        stack) does not use; they are still passed on to RLlib.

        Args:
            per_agent_learners: update each agent's policy on its own Ray actor
                (model parallel; see learners.py). The driver samples, builds
                the joint minibatch and target actions once, and sends each
                learner the columns its critic reads.
            data_parallel_learners: L; with L > 1, L Ray actors compute the
                gradients of each update on 1/L of the minibatch and the driver
                applies their average (data parallel). 1: no replicas.
            learner_resources: Ray resources of each learner actor (per-agent
                learner or gradient replica), e.g. {"CPU": 1} or
                {"CPU": 1, "GPU": 1} or a custom resource to place them on a node.
            batched_update: how the driver's learner runs an update round:
                "off", one update per policy after another (core/update.py);
                "auto", all agents in one batched call on weights stacked
                along an agent dimension (batched_learner.py; the same
                equations, fewer and larger matmuls) when every agent has its
                own policy and all are alike (same sizes, nets and settings,
                the common MPE case), else the per-agent loop (one log line
                says why); "on", batched or an error naming what rules it out:
                shared policies, heterogeneous agents, local critics, agents
                that come and go, policy inference, policy ensembles, MATD3's
                keys, learners on Ray actors, independent_minibatches.
            **kwargs: RLlib's own `AlgorithmConfig.learners()` arguments.

        Returns:
            This updated MADDPGConfig object.
        """
        own = dict(locals())
        super().learners(**kwargs)
        self._set_given(own)
        return self

    @override(AlgorithmConfig)
    def fault_tolerance(
        self,
        *,
        sample_on_driver_when_runners_down: Optional[bool] = NotProvided,
        env_runner_wait_timeout_s: Optional[float] = NotProvided,
        **kwargs,
    ) -> "MADDPGConfig":
        """Sets what a training step does while no remote env runner is healthy
        (fault_tolerance.py, docs/fault_tolerance.md), and RLlib's own fault
        tolerance settings.

        Args:
            sample_on_driver_when_runners_down: with remote env runners and
                `restart_failed_env_runners`, when none of them has been
                healthy for `env_runner_wait_timeout_s` (e.g. their node is
                lost and no node with their resources is up), sample with the
                driver's own env runner, at reduced speed, until one is back;
                False: raise an error that names the node and the fix. Builds
                the env on the driver too.
            env_runner_wait_timeout_s: how long (seconds) training waits,
                polling, for a lost env runner to come back (a crashed process
                restarts in seconds) before the above. > 0.
            **kwargs: RLlib's own `AlgorithmConfig.fault_tolerance()` arguments
                (restart_failed_env_runners, max_num_env_runner_restarts, ...).

        Returns:
            This updated MADDPGConfig object.
        """
        own = dict(locals())
        super().fault_tolerance(**kwargs)
        self._set_given(own)
        return self

    @override(AlgorithmConfig)
    def framework(
        self,
        framework: Optional[str] = NotProvided,
        *,
        torch_num_threads: Optional[int] = NotProvided,
        **kwargs,
    ) -> "MADDPGConfig":
        """Sets torch's threads per process, and RLlib's own framework settings.

        Here, not in `resources()`: `resources()` asks Ray's scheduler for CPUs
        and GPUs, while this sets how each process uses its CPUs, as RLlib's
        `framework(tf_session_args={"intra_op_parallelism_threads": ...})`
        does for TF and the `torch_*` arguments of `framework()` do for torch.

        Args:
            torch_num_threads: torch's intra-op threads in every process that
                builds a MADDPG policy (driver, env runners, learner actors),
                set when the policy is built; None leaves torch's default (one
                per core). Default 1: on 2 cores with Ray's processes busy, two
                threads made the small updates of 2x64 MLPs 8-13x slower.
            **kwargs: RLlib's own `AlgorithmConfig.framework()` arguments. MADDPG
                is PyTorch only (validate() refuses another framework).

        Returns:
            This updated MADDPGConfig object.
        """
        own = dict(locals())
        super().framework(framework, **kwargs)
        self._set_given(own)
        return self

    @override(AlgorithmConfig)
    def get_evaluation_config_object(self):
        eval_config = super().get_evaluation_config_object()
        if eval_config is not None and self.evaluation_duration_unit == "episodes":
            # RLlib's old stack calls sample() once per episode it wants; with one
            # sub-env the lockstep sampler returns exactly one whole episode.
            eval_config.num_envs_per_env_runner = 1
        return eval_config

    # --- validation ---------------------------------------------------------

    @override(AlgorithmConfig)
    def update_from_dict(self, config_dict) -> "MADDPGConfig":
        """As AlgorithmConfig's, but an unknown key is an error, not a new attribute."""
        keys = config_dict.to_dict() if isinstance(config_dict, AlgorithmConfig) else config_dict
        for key in keys:
            self._check_known_key(key)
        return super().update_from_dict(config_dict)

    def _check_known_key(self, key: str) -> None:
        # Keys RLlib itself puts in config dicts (Tune, checkpoints, policy configs).
        special = {"multiagent", "class", TRIAL_INFO, STDOUT_FILE, STDERR_FILE,
                   "_enable_new_api_stack", "__policy_id"}
        translated = translate_config_key(key)
        if key in special or key.startswith("evaluation_") or hasattr(self, translated):
            return
        known = [k for k in vars(self) if not k.startswith("_")]
        close = difflib.get_close_matches(key, known, n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(
            f"unknown MADDPG config key {key!r}.{hint} See MADDPGConfig.training(), "
            ".env_runners(), .learners(), .fault_tolerance() and .framework() for MADDPG's "
            "keys and AlgorithmConfig for RLlib's."
        )

    @override(AlgorithmConfig)
    def validate(self) -> None:
        if self.enable_rl_module_and_learner or self.enable_env_runner_and_connector_v2:
            raise ValueError(
                "MADDPG runs on RLlib's old API stack only: remove "
                "enable_rl_module_and_learner / enable_env_runner_and_connector_v2 "
                "from your config (MADDPGConfig sets them to False)."
            )
        if self.framework_str != "torch":
            raise ValueError(
                f"MADDPG is PyTorch only, got framework={self.framework_str!r}: "
                "remove `framework` from your config."
            )
        if self.ignore_final_observation:
            # Checked here: RLlib's own check reads `algo_class.__name__`, and
            # algo_class is the registered name "MADDPG" (a str).
            raise ValueError(
                "MADDPG does not read `ignore_final_observation` (RLlib's offline "
                "data on the new API stack): remove it from your config."
            )
        super().validate()
        self._validate_maddpg_keys()
        if self.env_runner_cls in (None, RolloutWorker, LockstepEnvRunner):
            self.env_runner_cls = LockstepEnvRunner if self.use_lockstep_sampler else None
        if self.num_env_runners > 0 and self.restart_failed_env_runners \
                and self.sample_on_driver_when_runners_down:
            self.create_env_on_local_worker = True  # the driver's runner samples while they are down
        if self.env is not None:
            self._resolve_agents()

    def _validate_maddpg_keys(self) -> None:
        def check(ok: bool, key: str, rule: str) -> None:
            if not ok:
                raise ValueError(f"{key}={getattr(self, key)!r} is invalid: {rule}.")

        def positive_int(key):
            value = getattr(self, key)
            check(isinstance(value, (int, np.integer)) and value > 0, key, "use an integer > 0")

        for key in ("actor_lr", "critic_lr", "gumbel_softmax_temperature"):
            check(isinstance(getattr(self, key), (int, float)) and getattr(self, key) > 0,
                  key, "use a number > 0")
        check(0.0 <= self.gamma <= 1.0, "gamma", "use a discount in [0, 1]")
        check(0.0 < self.tau <= 1.0, "tau", "use a rate in (0, 1]")
        positive_int("train_batch_size")
        positive_int("env_steps_per_update")
        check(isinstance(self.num_steps_sampled_before_learning_starts, (int, np.integer))
              and self.num_steps_sampled_before_learning_starts >= 0,
              "num_steps_sampled_before_learning_starts", "use an integer >= 0")
        check(isinstance(self.replay_buffer_config, dict)
              and set(self.replay_buffer_config) == {"capacity"}
              and isinstance(self.replay_buffer_config["capacity"], (int, np.integer))
              and self.replay_buffer_config["capacity"] >= self.train_batch_size,
              "replay_buffer_config",
              "give exactly {'capacity': N} with N an integer >= train_batch_size")
        for key in ("actor_hiddens", "critic_hiddens"):
            value = getattr(self, key)
            check(isinstance(value, (list, tuple))
                  and all(isinstance(w, (int, np.integer)) and w > 0 for w in value),
                  key, "use a list of positive layer widths, e.g. [64, 64]")
        for key in ("actor_hidden_activation", "critic_hidden_activation"):
            check(getattr(self, key) in ACTIVATIONS, key, f"use one of {sorted(ACTIVATIONS)}")
        check(self.grad_norm_clipping is None or self.grad_norm_clipping > 0,
              "grad_norm_clipping", "use a number > 0, or None for no clipping")
        check(self.grad_norm_clipping_scope in ("variable", "network"),
              "grad_norm_clipping_scope", "use 'variable' (original) or 'network'")
        check(self.torch_num_threads is None
              or (isinstance(self.torch_num_threads, (int, np.integer)) and self.torch_num_threads >= 1),
              "torch_num_threads", "use an integer >= 1, or None for torch's default")
        check(self.layer_init in LAYER_INITS, "layer_init", f"use one of {list(LAYER_INITS)}")
        check(self.actor_regularization >= 0, "actor_regularization", "use a number >= 0")
        check(isinstance(self.use_local_critic, bool)
              or (isinstance(self.use_local_critic, (list, tuple))
                  and all(isinstance(p, str) for p in self.use_local_critic)),
              "use_local_critic", "use True/False or a list of policy IDs")
        for key in ("gumbel_softmax_hard", "gumbel_target_noise", "simplex_box_actions",
                    "store_buffer_in_checkpoints", "standardize_rewards", "independent_minibatches",
                    "use_lockstep_sampler", "overlap_sampling_and_learning"):
            check(isinstance(getattr(self, key), bool), key, "use True or False")
        check(isinstance(self.infer_other_policies, bool)
              or (isinstance(self.infer_other_policies, (list, tuple))
                  and all(isinstance(p, str) for p in self.infer_other_policies)),
              "infer_other_policies", "use True/False or a list of policy IDs")
        check(isinstance(self.policy_inference_entropy, (int, float))
              and self.policy_inference_entropy >= 0,
              "policy_inference_entropy", "use a number >= 0")
        check(isinstance(self.num_subpolicies, (int, np.integer)) and self.num_subpolicies >= 1,
              "num_subpolicies", "use an integer >= 1")
        check(isinstance(self.ensemble_shared_draw, (list, tuple))
              and all(isinstance(g, (list, tuple)) and all(isinstance(p, str) for p in g)
                      for g in self.ensemble_shared_draw),
              "ensemble_shared_draw", "use a list of lists of policy IDs, e.g. [['agent_0', 'agent_1']]")
        check(self.subpolicy_for_acting is None
              or (isinstance(self.subpolicy_for_acting, (int, np.integer)) and self.subpolicy_for_acting >= 0),
              "subpolicy_for_acting", "use None (draw per episode) or a sub-policy index >= 0")
        check(isinstance(self.per_agent_learners, bool), "per_agent_learners", "use True or False")
        check(isinstance(self.shared_policy_agent_id, bool), "shared_policy_agent_id", "use True or False")
        check(self.strict_lockstep is None or isinstance(self.strict_lockstep, bool),
              "strict_lockstep", "use True, False, or None (the env decides)")
        check(isinstance(self.data_parallel_learners, (int, np.integer)) and self.data_parallel_learners >= 1,
              "data_parallel_learners", "use an integer >= 1 (1: no replicas)")
        check(not (self.independent_minibatches and (self.per_agent_learners or self.data_parallel_learners > 1)),
              "independent_minibatches", "use it with the local learner (no per-agent or data-parallel learners)")
        check(not (self.per_agent_learners and self.data_parallel_learners > 1),
              "data_parallel_learners", "choose per-agent learners or data-parallel learners, not both")
        check(self.batched_update in ("off", "auto", "on"), "batched_update", "use 'off', 'auto' or 'on'")
        if self.batched_update == "on":
            from rllib_maddpg.batched_learner import config_refusal

            reason = config_refusal(self)
            check(reason is None, "batched_update",
                  f"{reason}; use batched_update='auto' to fall back to the per-agent updates")
        check(isinstance(self.learner_resources, dict)
              and all(isinstance(k, str) and isinstance(v, (int, float)) and v >= 0
                      for k, v in self.learner_resources.items()),
              "learner_resources", "use a dict of resource name -> amount >= 0, e.g. {'CPU': 1}")
        check(isinstance(self.sample_on_driver_when_runners_down, bool),
              "sample_on_driver_when_runners_down", "use True or False")
        check(isinstance(self.env_runner_wait_timeout_s, (int, float)) and self.env_runner_wait_timeout_s > 0,
              "env_runner_wait_timeout_s", "use a number of seconds > 0")
        check(self.exploration_noise_scale >= 0, "exploration_noise_scale", "use a number >= 0")
        check(isinstance(self.twin_critics, bool), "twin_critics", "use True or False")
        check(isinstance(self.target_action_noise, (int, float)) and not isinstance(self.target_action_noise, bool)
              and self.target_action_noise >= 0,
              "target_action_noise", "use a number >= 0 (0: no target policy smoothing; MATD3: 0.2)")
        check(isinstance(self.target_action_noise_clip, (int, float))
              and not isinstance(self.target_action_noise_clip, bool) and self.target_action_noise_clip > 0,
              "target_action_noise_clip", "use a number > 0 (TD3: 0.5)")
        check(isinstance(self.n_step, (int, np.integer)) and not isinstance(self.n_step, bool) and self.n_step >= 1,
              "n_step", "use an integer >= 1 (1: the paper's one-step target)")
        check(self.n_step == 1 or not self.standardize_rewards, "n_step",
              "n-step reward sums are not standardized: set standardize_rewards False or n_step 1")
        check(isinstance(self.actor_update_delay, (int, np.integer)) and not isinstance(self.actor_update_delay, bool)
              and self.actor_update_delay >= 1,
              "actor_update_delay", "use an integer >= 1 (1: every update; MATD3: 2)")
        if self.exploration_noise_final_scale is not None:
            check(self.exploration_noise_final_scale >= 0,
                  "exploration_noise_final_scale", "use a number >= 0, or None")
            check(isinstance(self.exploration_noise_anneal_timesteps, (int, np.integer))
                  and self.exploration_noise_anneal_timesteps > 0,
                  "exploration_noise_anneal_timesteps",
                  "set an integer > 0 when exploration_noise_final_scale is set")
        # RLlib keys that MADDPG does not read: refuse them rather than ignore them.
        defaults = AlgorithmConfig()
        for key, instead in (("lr", "actor_lr / critic_lr"),
                             ("grad_clip", "grad_norm_clipping")):
            if getattr(self, key) != getattr(defaults, key):
                raise ValueError(f"MADDPG does not read `{key}`: set {instead} instead.")

    def _resolve_agents(self) -> None:
        """The joint agent order, each agent's policy and spaces, read from the env (agents.py)."""
        resolve_agents(self)
