"""The definitions of reward modelling and RL from feedback, written out in numpy as TRL's trainers compute them
(RewardTrainer, PPOTrainer, GRPOTrainer) and DeepSeekMath defines GRPO, from the same fixed tensors the project's
PreferenceMath is given. Usage: preference_math.py input.json output.json"""
import json, sys
import numpy as np

inp = json.load(open(sys.argv[1]))
a = {k: np.array(v, dtype=np.float64) for k, v in inp.items() if isinstance(v, list)}
p = inp["params"]
mask = a["mask"]

def logsigmoid(x):
    return -np.logaddexp(0, -x)

def masked_mean(x, m):
    return (x * m).sum() / m.sum()

out = {}
# Bradley-Terry, with margin and reward centering (TRL RewardTrainer.compute_loss).
d = a["chosen"] - a["rejected"] - a["margin"]
out["bt"] = float(-logsigmoid(d).mean() + p["centering"] * ((a["chosen"] + a["rejected"]) ** 2).mean())

# PPO rewards: -beta * k1 per token, the score at the last response token (TRL PPOTrainer).
k1 = a["old_logp"] - a["ref_logp"]
rewards = -p["kl_coef"] * k1 * mask
for i in range(rewards.shape[0]):
    last = int(mask[i].sum()) - 1
    rewards[i, last] += a["scores"][i]
out["ppo_rewards"] = rewards.tolist()

# GAE as TRL's loop: values and rewards are 0 on padding; nothing after the last token.
values = a["values"] * mask
T = rewards.shape[1]
lastgaelam = np.zeros(rewards.shape[0])
reversed_adv = []
for t in reversed(range(T)):
    nextvalues = values[:, t + 1] if t < T - 1 else 0.0
    delta = rewards[:, t] + p["gamma"] * nextvalues - values[:, t]
    lastgaelam = delta + p["gamma"] * p["lam"] * lastgaelam
    reversed_adv.append(lastgaelam)
adv = np.stack(reversed_adv[::-1], axis=1) * mask
returns = (adv + values) * mask
out["advantages"] = adv.tolist()
out["returns"] = returns.tolist()
mean = masked_mean(adv, mask)
var = masked_mean((adv - mean) ** 2, mask) * mask.sum() / (mask.sum() - 1)
out["whitened"] = ((adv - mean) / np.sqrt(var + 1e-8) * mask).tolist()

# PPO clipped policy and value losses over response tokens.
ratio = np.exp(a["logp"] - a["old_logp"])
A = np.array(out["whitened"])
pg1 = -A * ratio
pg2 = -A * np.clip(ratio, 1 - p["clip"], 1 + p["clip"])
out["pg_loss"] = float(masked_mean(np.maximum(pg1, pg2), mask))
out["clipfrac"] = float(masked_mean((pg2 > pg1).astype(np.float64), mask))
vclipped = np.clip(a["vpred"], a["values"] - p["clip_value"], a["values"] + p["clip_value"])
out["vf_loss"] = float(0.5 * masked_mean(np.maximum((a["vpred"] - returns) ** 2, (vclipped - returns) ** 2), mask))

# k3 KL, GRPO's group advantages (unbiased std + 1e-4) and loss (per-sequence mean, then batch mean).
dk = a["ref_logp"] - a["logp"]
k3 = np.exp(dk) - dk - 1
out["k3"] = k3.tolist()
G = p["group"]
g = a["group_rewards"].reshape(-1, G)
gadv = ((g - g.mean(axis=1, keepdims=True)) / (g.std(axis=1, ddof=1, keepdims=True) + 1e-4)).reshape(-1)
out["grpo_advantages"] = gadv.tolist()
ga = gadv[: ratio.shape[0]][:, None]
surrogate = np.minimum(ratio * ga, np.clip(ratio, 1 - p["clip"], 1 + p["clip"]) * ga)
per_token = -(surrogate - p["beta"] * k3)
out["grpo_loss"] = float(((per_token * mask).sum(axis=1) / mask.sum(axis=1)).mean())

# The adaptive KL coefficient, as TRL's AdaptiveKLController.update: a series of (kl, n_steps) updates from kl_coef.
class AdaptiveKLController:
    def __init__(self, init_kl_coef, target, horizon):
        self.value, self.target, self.horizon = init_kl_coef, target, horizon
    def update(self, current, n_steps):
        proportional_error = np.clip(current / self.target - 1, -0.2, 0.2)
        mult = 1 + proportional_error * n_steps / self.horizon
        self.value *= mult
ctl = AdaptiveKLController(p["kl_coef"], p["kl_target"], p["kl_horizon"])
coefficients = []
for kl, n in p["kl_updates"]:
    ctl.update(kl, n)
    coefficients.append(ctl.value)
out["adaptive_kl"] = coefficients
json.dump(out, open(sys.argv[2], "w"))
