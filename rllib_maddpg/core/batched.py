"""One MADDPG update round of N alike agents at once: stacked weights [N, ...] (issue 23).

core/update.py updates agent i, then agent i+1, ...: 2-3 small matmuls per
layer per agent, one after another. Within an update round the agents do not
read each other's weights (the target actions a'_j are in the minibatch,
computed before the round; agent i's critic and actor steps read only agent
i's nets and the minibatch), so the N updates can run as one computation on
the weights stacked along a leading agent dimension:

    target actions  a'_j = mu'_j(o'_j)           one bmm per layer for all j
    critics         y_i = r_i + gamma (1 - d_i) Q'_i(x', a')
                    sum_i mean (Q_i(x, a) - y_i)^2
    actors          sum_i -mean Q_i(x, a_1.., mu_i(o_i), ..a_N) + reg mean pre_i^2
    steps           Adam on the stacks (elementwise: N Adams); gradients clipped
                    per agent slice (per variable, or per net)
    targets         theta' <- tau theta + (1 - tau) theta' on the stacks

Summing the agents' losses changes no agent's gradient: loss_i reads only
agent i's slice. Every critic reads the same joint input x = (o_1..o_N,
a_1..a_N), so the critics' first layers are one matmul x W^T with the N
weight matrices side by side. Agent i's actor loss changes only a_i in x:

    W_i [x with a_i -> mu_i(o_i)] = W_i x + W_i^{a_i} (mu_i(o_i) - a_i)

so it reuses that matmul (with the critic's new weights) and adds an [A]-wide
correction per agent, whose gradient reaches mu_i alone (`mode="shared"`).
`mode="full"` builds each agent's full critic input instead, as update.py
does; `mode="vmap"` runs the per-agent nets with torch.func.vmap over
functional_call (the stack_module_state route) on full inputs.

Scope: agents with the same observation and action sizes, MLP nets (as
core.networks.mlp builds them, any of its activations), a centralised
unmasked critic over all N agents, one sub-policy, no policy inference, no
twin critics, no agent ids. batched_learner.py checks this scope for RLlib's
policies (config key `batched_update`).

With `share_weights=True` the stacks become the storage of the agents' own
parameters: afterwards each agent's weight is a view of its slice, so every
in-place write (an update round here, `load_state_dict` or RLlib's
`set_weights` there) shows on both sides and nothing is copied per round.

Plain torch; `head` is an action head from core/actions.py (its sampling
works on any leading dims, so one call draws all N agents' noise, in the same
order as N calls).
"""

import copy
from typing import Dict, List, Sequence

import torch
from torch import nn

from rllib_maddpg.core import joint as jb
from rllib_maddpg.core.networks import ACTIVATIONS


def stack_mlps(mlps: Sequence[nn.Sequential], requires_grad: bool, share: bool = False) -> List[torch.Tensor]:
    """[W_0, b_0, W_1, b_1, ...] of N alike MLPs, each stacked to [N, ...] (copies).
    share: then point each MLP's parameters at their slices of the stacks (views)."""
    linears = [[m for m in net if isinstance(m, nn.Linear)] for net in mlps]
    params = []
    for layer in zip(*linears):
        for name in ("weight", "bias"):
            stacked = nn.Parameter(torch.stack([getattr(lin, name).detach() for lin in layer]),
                                   requires_grad=requires_grad)
            if share:
                for k, lin in enumerate(layer):
                    getattr(lin, name).data = stacked.data[k]
            params.append(stacked)
    return params


def unstack_into(params: Sequence[torch.Tensor], mlps: Sequence[nn.Sequential]) -> None:
    """Copies agent k's slice of `params` into mlps[k] (inverse of `stack_mlps`)."""
    with torch.no_grad():
        for k, net in enumerate(mlps):
            flat = [p for m in net if isinstance(m, nn.Linear) for p in (m.weight, m.bias)]
            for dst, src in zip(flat, params):
                dst.copy_(src[k])


def mlp_forward(params: Sequence[torch.Tensor], x: torch.Tensor, start: int = 0,
                activation=torch.relu) -> torch.Tensor:
    """N MLPs on their own inputs: x [N, B, in] -> [N, B, out]; `activation` between layers.
    `start`: the index in `params` of the first layer to apply (x already passed the earlier ones)."""
    layers = range(start, len(params), 2)
    for n, l in enumerate(layers):
        x = torch.baddbmm(params[l + 1].unsqueeze(1), x, params[l].transpose(1, 2))
        if n < len(layers) - 1:
            x = activation(x)
    return x


def shared_first_layer(weight: torch.Tensor, bias: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """N first layers on one shared input: x [B, D] -> [N, B, H], as one [B, D] x [D, N H] matmul."""
    n, h, d = weight.shape
    out = torch.addmm(bias.reshape(n * h), x, weight.reshape(n * h, d).t())
    # contiguous: bmm on the transposed view (and its backward) takes a slow, non-BLAS path
    return out.view(x.shape[0], n, h).transpose(0, 1).contiguous()


def critic_forward(params: Sequence[torch.Tensor], x: torch.Tensor, activation=torch.relu) -> torch.Tensor:
    """Q_i(x) of the N critics on the shared joint input x [B, D] -> [N, B]."""
    h = activation(shared_first_layer(params[0], params[1], x))
    return mlp_forward(params, h, start=2, activation=activation).squeeze(-1)


class BatchedMADDPG:
    """N alike agents' actors, critics, targets and Adam optimizers as stacks.

    Built from the agents' MADDPGNetworks: copies of their weights, which
    `write_back` copies into them, or (`share_weights`) the storage of their
    weights from then on. config: actor_lr, critic_lr, gamma, tau,
    grad_norm_clipping, grad_norm_clipping_scope, actor_regularization, and
    (default relu) actor_hidden_activation, critic_hidden_activation.
    Adam: `foreach` as torch.optim.Adam's (policy.py uses True).
    """

    NETS = ("actor", "critic", "target_actor", "target_critic")

    def __init__(self, models, head, config: Dict, mode: str = "shared", share_weights: bool = False,
                 foreach=None):
        if mode not in ("shared", "full", "vmap"):
            raise ValueError(f"unknown mode {mode!r}")
        self.n = len(models)
        self.head, self.config, self.mode = head, config, mode
        self._actor_activation = ACTIVATIONS[config.get("actor_hidden_activation", "relu")]()
        self._critic_activation = ACTIVATIONS[config.get("critic_hidden_activation", "relu")]()
        if mode == "vmap":
            self._actor_call = _vmapped(models[0].actor)
            self._critic_call = _vmapped(models[0].critic)
        for name in self.NETS:
            setattr(self, name, stack_mlps([getattr(m, name) for m in models], not name.startswith("target"),
                                           share=share_weights))
        self.optimizers = {"actor": torch.optim.Adam(self.actor, lr=config["actor_lr"], foreach=foreach),
                           "critic": torch.optim.Adam(self.critic, lr=config["critic_lr"], foreach=foreach)}
        self.action_dim = self.actor[-2].shape[1]

    def write_back(self, models) -> None:
        for name in self.NETS:
            unstack_into(getattr(self, name), [getattr(m, name) for m in models])

    # --- Adam's state, per agent ---------------------------------------------

    def agent_optimizer_state(self, name: str, k: int) -> Dict:
        """Agent k's slice of optimizer `name`'s state, as the `state` entry of the
        state_dict of a torch Adam over agent k's own parameters (same order)."""
        return {i: {key: value.clone() if key == "step" else value[k].clone() for key, value in s.items()}
                for i, s in self.optimizers[name].state_dict()["state"].items()}

    def load_agent_optimizer_states(self, name: str, states: Sequence[Dict]) -> None:
        """Inverse of `agent_optimizer_state`: optimizer `name`'s state from the N
        agents' (all empty, e.g. never stepped, or all with the same Adam step)."""
        if any(not s for s in states):
            if any(states):
                raise ValueError(f"some agents' {name} optimizers have state and some do not")
            stacked = {}
        else:
            stacked = {}
            for i in states[0]:
                steps = {float(s[i]["step"]) for s in states}
                if len(steps) > 1:
                    raise ValueError(f"the agents' {name} optimizers are at different Adam steps {sorted(steps)}")
                stacked[i] = {key: states[0][i][key].clone() if key == "step"
                              else torch.stack([s[i][key] for s in states]) for key in states[0][i]}
        optimizer = self.optimizers[name]
        optimizer.load_state_dict({"state": stacked, "param_groups": optimizer.state_dict()["param_groups"]})

    # --- one round -----------------------------------------------------------

    def update_round(self, batch: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Target actions, then every agent's critic step, actor step and soft update.
        Returns per-agent stats as [N] tensors."""
        n = self.n
        obs = torch.stack(jb.gather(batch, jb.obs_col, range(n)))            # [N, B, O]
        actions = torch.stack(jb.gather(batch, jb.actions_col, range(n)))    # [N, B, A]
        new_obs = torch.stack(jb.gather(batch, jb.new_obs_col, range(n)))
        rewards = torch.stack(jb.gather(batch, jb.rewards_col, range(n)))    # [N, B]
        dones = torch.stack(jb.gather(batch, jb.terminateds_col, range(n)))
        x = torch.cat(jb.gather(batch, jb.obs_col, range(n)) + jb.gather(batch, jb.actions_col, range(n)), -1)
        with torch.no_grad():
            target_actions = self.head.target_action(self._actors(self.target_actor, new_obs))
            x_tp1 = torch.cat(list(new_obs) + list(target_actions), -1)
            # n-step rows carry gamma^k per row (core/nstep.py); one-step rows use gamma.
            gamma = batch.get(jb.DISCOUNT_COL, self.config["gamma"])
            y = rewards + gamma * (1.0 - dones) * self._critics(self.target_critic, x_tp1)
        # Critics (eq. 6).
        q = self._critics(self.critic, x)
        critic_loss_n = (q - y).pow(2).mean(1)
        stats = {"q_mean": q.detach().mean(1), "target_y_mean": y.mean(1)}
        stats["critic_loss"] = critic_loss_n.detach()
        stats["critic_grad_norm"] = self._step("critic", critic_loss_n.sum())
        # Actors (eq. 5): a_i -> mu_i(o_i), the critics' new weights frozen.
        pre = self._actors(self.actor, obs)
        policy_actions = self.head.policy_action(pre)
        critic = [p.detach() for p in self.critic]
        if self.mode == "shared":
            with torch.no_grad():
                base = shared_first_layer(critic[0], critic[1], x)           # W_i x + b_i
            own = self._own_action_columns(critic[0], obs.shape[-1])          # W_i^{a_i}  [N, H, A]
            h = base + torch.bmm(policy_actions - actions, own.transpose(1, 2))
            q_pi = mlp_forward(critic, self._critic_activation(h), start=2,
                               activation=self._critic_activation).squeeze(-1)
        elif self.mode == "full":
            x_i = self._inputs_with_own_action(x, policy_actions, obs.shape[-1])
            q_pi = mlp_forward(critic, x_i, activation=self._critic_activation).squeeze(-1)
        else:
            slots = self._own_action_slots(x)
            obs_part, acts = x[:, :n * obs.shape[-1]], x[:, n * obs.shape[-1]:]

            def q_with_own_action(params, policy_action, slot):
                own = policy_action.repeat(1, n)
                return self._critic_call(params, torch.cat([obs_part, acts * (1.0 - slot) + own * slot], -1))

            q_pi = torch.func.vmap(q_with_own_action)(tuple(critic), policy_actions, slots).squeeze(-1)
        actor_loss_n = -q_pi.mean(1) + self.config["actor_regularization"] * pre.pow(2).mean((1, 2))
        stats["actor_loss"] = actor_loss_n.detach()
        stats["actor_grad_norm"] = self._step("actor", actor_loss_n.sum())
        # Targets.
        tau = self.config["tau"]
        with torch.no_grad():
            for target, online in ((self.target_critic, self.critic), (self.target_actor, self.actor)):
                torch._foreach_mul_(target, 1.0 - tau)
                torch._foreach_add_(target, online, alpha=tau)
        return stats

    def _actors(self, params, obs: torch.Tensor) -> torch.Tensor:
        """mu_i(o_i) (or mu'_i) of every agent: obs [N, B, O] -> [N, B, A]."""
        if self.mode == "vmap":
            return torch.func.vmap(self._actor_call)(tuple(params), obs)
        return mlp_forward(params, obs, activation=self._actor_activation)

    def _critics(self, params, x: torch.Tensor) -> torch.Tensor:
        """Q_i(x) (or Q'_i) of every agent on the shared joint input x [B, D] -> [N, B]."""
        if self.mode == "vmap":
            return torch.func.vmap(self._critic_call, in_dims=(0, None))(tuple(params), x).squeeze(-1)
        return critic_forward(params, x, self._critic_activation)

    def _own_action_slots(self, x: torch.Tensor) -> torch.Tensor:
        """[N, 1, N A]: row i is 1 on a_i's entries of the joint action."""
        slot = torch.zeros(self.n, 1, self.n, self.action_dim, dtype=x.dtype, device=x.device)
        index = torch.arange(self.n, device=x.device)
        slot[index, 0, index] = 1.0
        return slot.reshape(self.n, 1, self.n * self.action_dim)

    def _own_action_columns(self, w1: torch.Tensor, obs_dim: int) -> torch.Tensor:
        """W_i^{a_i}: the columns of critic i's first layer that read a_i, [N, H, A]."""
        n, h, _ = w1.shape
        acts = w1[:, :, n * obs_dim:].reshape(n, h, n, self.action_dim)
        k = torch.arange(n, device=w1.device)
        return acts[k, :, k, :]

    def _inputs_with_own_action(self, x, policy_actions, obs_dim) -> torch.Tensor:
        """Agent i's critic input with a_i replaced by mu_i(o_i): [N, B, D]."""
        n, b, a = policy_actions.shape
        slot = self._own_action_slots(x)
        acts = x[:, n * obs_dim:].expand(n, b, n * a)
        acts = acts * (1.0 - slot) + policy_actions.repeat(1, 1, n) * slot
        return torch.cat([x[:, :n * obs_dim].expand(n, b, n * obs_dim), acts], -1)

    def _step(self, name: str, loss: torch.Tensor) -> torch.Tensor:
        """backward, clip each agent's slice, Adam step; returns each agent's norm before clipping [N]."""
        params = self.actor if name == "actor" else self.critic
        self.optimizers[name].zero_grad(set_to_none=True)
        loss.backward()
        norms = clip_per_agent([p.grad for p in params], self.config["grad_norm_clipping"],
                               self.config["grad_norm_clipping_scope"])
        self.optimizers[name].step()
        return norms


def _vmapped(net: nn.Sequential):
    """f(params, x): `net`'s function with its Linear weights and biases given as the
    list `stack_mlps` makes (one agent's slice each), for torch.func.vmap."""
    template = copy.deepcopy(net).to("meta")
    names = [name for name, _ in template.named_parameters()]

    def call(params, x):
        return torch.func.functional_call(template, dict(zip(names, params)), (x,))

    return call


def clip_per_agent(grads: List[torch.Tensor], clip, scope: str) -> torch.Tensor:
    """update.clip_gradients on each agent's slice of stacked gradients [N, ...], in place.
    Returns each agent's global gradient norm before clipping, [N]."""
    per_tensor = torch.stack([g.flatten(1).norm(dim=1) for g in grads])     # [T, N]
    total = per_tensor.norm(dim=0)
    if clip is None:
        return total
    if scope == "variable":
        scale = clip / per_tensor.clamp_min(clip)
        for g, s in zip(grads, scale):
            g.mul_(s.view(-1, *[1] * (g.dim() - 1)))
    else:
        scale = (clip / (total + 1e-6)).clamp_max(1.0)
        for g in grads:
            g.mul_(scale.view(-1, *[1] * (g.dim() - 1)))
    return total
