using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using Pipeline.Contracts.Checkpoints;

namespace Pipeline.Model;

/// <summary>
/// A decoder-only GPT in the nanoGPT mould: token embedding, pre-norm blocks with rotary attention, a final norm and
/// an output layer tied to the embedding.
/// </summary>
public sealed class Gpt : nn.Module<Tensor, Tensor>
{
    private readonly Embedding wte;
    private readonly ModuleList<TransformerBlock> blocks;
    private readonly nn.Module<Tensor, Tensor> norm;
    // Not readonly: TorchSharp's Module.to(device or dtype) replaces buffers through their fields (and re-registers
    // them under the field names), so these fields, not a by-name lookup, always hold the live tables.
    private Tensor ropeCos;
    private Tensor ropeSin;
    private Tensor? qwte;
    private Tensor? qwte_scales;
    // A reward model's scalar head (GptConfig.ScoreHead); null for a language model.
    private readonly Linear? score;

    public Gpt(GptConfig config, Device? device = null) : base("gpt")
    {
        config.Validate();
        Config = config;
        wte = nn.Embedding(config.VocabSize, config.Width);
        blocks = nn.ModuleList(Enumerable.Range(0, config.Layers).Select(i => new TransformerBlock($"block{i}", config)).ToArray());
        norm = Norm(config);
        if (config.ScoreHead) score = nn.Linear(config.Width, 1, hasBias: false);
        var inv = 1.0 / pow(config.RopeTheta, arange(0, config.HeadDim, 2, dtype: float32) / config.HeadDim);
        var angles = outer(arange(config.Context, dtype: float32), inv);
        ropeCos = angles.cos();
        ropeSin = angles.sin();
        register_buffer(nameof(ropeCos), ropeCos, persistent: false);
        register_buffer(nameof(ropeSin), ropeSin, persistent: false);
        RegisterComponents();
        InitWeights(config);
        if (device is not null) this.to(device);
    }

    public GptConfig Config { get; }

    /// <summary>How the weights are quantized, or null for full precision.</summary>
    public WeightQuantization? Quantization { get; private set; }

    /// <summary>
    /// Quantizes every linear layer's weight (and the token embedding, which is also the output layer, when
    /// <see cref="WeightQuantization.Embeddings"/>) in place: weights are kept as int8 or packed int4 with f16 scales
    /// and dequantized layer by layer on each forward. Norms stay in full precision. Such a model samples and
    /// evaluates; it is not trained.
    /// </summary>
    public void Quantize(WeightQuantization quantization)
    {
        if (Quantization is not null) throw new InvalidOperationException($"the model is already quantized ({Quantization.Name})");
        quantization.Validate(Config.Width, Config.MlpHidden);
        foreach (var layer in AdaptableLayers(["attn", "mlp"])) layer.Quantize(quantization.Bits, quantization.GroupSize);
        if (quantization.Embeddings)
        {
            (qwte, qwte_scales) = WeightQuantizer.Quantize(wte.weight!, quantization.Bits, quantization.GroupSize);
            register_buffer(nameof(qwte), qwte);
            register_buffer(nameof(qwte_scales), qwte_scales);
            using (no_grad()) wte.weight!.set_(empty(0, device: wte.weight.device));
        }
        foreach (var p in parameters()) p.requires_grad = false;
        Quantization = quantization;
    }

    /// <summary>Bytes the model's weights and buffers hold in memory (the rotary tables excluded).</summary>
    public long WeightBytes() =>
        state_dict().Values.Sum(t => t.NumberOfElements * t.ElementSize);

    /// <summary>Recompute each block's activations during the backward pass instead of keeping them (training memory).</summary>
    public bool CheckpointActivations { get; set; }

    public IReadOnlyList<TransformerBlock> Blocks => blocks.ToList();

    internal static nn.Module<Tensor, Tensor> Norm(GptConfig config) =>
        config.Norm == "layernorm" ? nn.LayerNorm(config.Width) : new RmsNorm("norm", config.Width);

    /// <summary>Logits (B, T, vocab) for token ids (B, T).</summary>
    public override Tensor forward(Tensor ids) => Forward(ids, null);

    /// <summary>
    /// Logits for token ids that continue the positions in <paramref name="cache"/> (none: start at 0).
    /// <paramref name="keyMask"/> (B, positions so far), for left-padded batches, marks the real tokens;
    /// <paramref name="packing"/> marks rows that hold several sequences (SFT packing).
    /// </summary>
    public Tensor Forward(Tensor ids, KvCache? cache, Tensor? keyMask = null, SequencePacking? packing = null)
    {
        using var scope = NewDisposeScope();
        using var table = DequantizedEmbedding();
        return Trunk(ids, cache, keyMask, packing, table).matmul((table ?? wte.weight!).t()).MoveToOuterDisposeScope();
    }

    /// <summary>The final hidden states (B, T, width), after the last norm: what the output layer and a score head read.</summary>
    public Tensor Hidden(Tensor ids, Tensor? keyMask = null)
    {
        using var scope = NewDisposeScope();
        using var table = DequantizedEmbedding();
        return Trunk(ids, null, keyMask, null, table).MoveToOuterDisposeScope();
    }

    // A quantized embedding is dequantized for one forward only; it is also the output layer. Null: not quantized.
    private Tensor? DequantizedEmbedding() => qwte is null ? null : WeightQuantizer.Dequantize(qwte, qwte_scales!, Quantization!.Bits);

    /// <summary>
    /// A reward model's scalar reward per sequence (B): the score head on the hidden state of each row's last real
    /// token, <paramref name="lengths"/> (B) tokens in (rows are right-padded; causal attention keeps the padding out).
    /// </summary>
    public Tensor Rewards(Tensor ids, Tensor lengths)
    {
        if (score is null) throw new InvalidOperationException("the model has no score head: it is a language model, not a reward model");
        using var scope = NewDisposeScope();
        var hidden = Hidden(ids);
        var last = (lengths - 1).view(-1, 1, 1).expand(-1, 1, hidden.shape[2]);
        return score.forward(hidden.gather(1, last).squeeze(1)).squeeze(-1).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Logits (B, T, vocab) and the score head at every position (B, T) from one pass: PPO's policy with its value
    /// head on the same trunk (as TRL's AutoModelForCausalLMWithValueHead).
    /// </summary>
    public (Tensor Logits, Tensor Scores) ForwardWithScores(Tensor ids)
    {
        if (score is null) throw new InvalidOperationException("the model has no score head");
        using var scope = NewDisposeScope();
        using var table = DequantizedEmbedding();
        var hidden = Trunk(ids, null, null, null, table);
        var logits = hidden.matmul((table ?? wte.weight!).t());
        var scores = score.forward(hidden).squeeze(-1);
        return (logits.MoveToOuterDisposeScope(), scores.MoveToOuterDisposeScope());
    }

    /// <summary>The language model alone: the same weights without the score head (PPO's policy once trained).</summary>
    public Gpt WithoutScoreHead()
    {
        return score is null ? this : WithShape(Config with { ScoreHead = false });
    }

    /// <summary>A new model of <paramref name="config"/> holding this one's weights wherever the two share a tensor name.</summary>
    private Gpt WithShape(GptConfig config)
    {
        var model = new Gpt(config, parameters().First().device);
        using var _ = no_grad();
        var target = model.state_dict();
        foreach (var (name, tensor) in state_dict())
            if (target.TryGetValue(name, out var into)) into.copy_(tensor);
        return model;
    }

    /// <summary>The score head of a reward model (its weight is Hugging Face's score.weight), or null.</summary>
    public Linear? ScoreHead => score;

    private Tensor Trunk(Tensor ids, KvCache? cache, Tensor? keyMask, SequencePacking? packing, Tensor? table)
    {
        if ((cache?.Length ?? 0) + ids.shape[1] > Config.Context)
            throw new ArgumentException($"{(cache?.Length ?? 0) + ids.shape[1]} positions exceed the model's context of {Config.Context}");
        var x = table is null ? wte.forward(ids) : table.index_select(0, ids.flatten()).view(ids.shape[0], ids.shape[1], -1);
        var (cos, sin) = (ropeCos, ropeSin);
        var layer = 0;
        foreach (var block in blocks)
        {
            block.Attention.Rope = (cos, sin);
            if (CheckpointActivations && is_grad_enabled() && cache is null && keyMask is null && packing is null)
            {
                var (b, l) = (block, layer++);
                x = ActivationCheckpoint.Apply(x, h => b.Forward(h, null, l));
            }
            else x = block.Forward(x, cache, layer++, keyMask, packing);
        }
        if (cache is not null) cache.Length += ids.shape[1];
        return norm.forward(x);
    }

    /// <summary>Mean cross-entropy of next-token prediction; positions whose target is <paramref name="ignoreIndex"/> are masked.</summary>
    public Tensor Loss(Tensor ids, Tensor targets, long ignoreIndex = -100, SequencePacking? packing = null)
    {
        using var scope = NewDisposeScope();
        var logits = Forward(ids, null, null, packing);
        if (logits.dtype != ScalarType.Float32) logits = logits.to(ScalarType.Float32); // softmax in fp32 under bf16 compute
        return nn.functional.cross_entropy(logits.view(-1, Config.VocabSize), targets.view(-1), ignore_index: ignoreIndex).MoveToOuterDisposeScope();
    }

    /// <summary>The linear layers LoRA can adapt, by role: "attn" (q/k/v and output projections) and "mlp".</summary>
    public IEnumerable<AdaptableLinear> AdaptableLayers(IReadOnlyCollection<string> targets)
    {
        foreach (var block in blocks)
        {
            if (targets.Contains("attn"))
            {
                yield return block.Attention.QueryKeyValue;
                yield return block.Attention.Projection;
            }
            if (targets.Contains("mlp"))
                foreach (var layer in block.Mlp.Layers) yield return layer;
        }
    }

    /// <summary>Adds LoRA adapters to the target layers and freezes every other parameter.</summary>
    public void AddLora(int rank, double alpha, double dropout, IReadOnlyCollection<string> targets)
    {
        foreach (var p in parameters()) p.requires_grad = false;
        foreach (var layer in AdaptableLayers(targets)) layer.AddAdapter(rank, alpha, dropout);
        // A reward model's head is new, so it trains whole beside the adapters (PEFT's modules_to_save for SEQ_CLS).
        if (score is not null) score.weight!.requires_grad = true;
    }

    /// <summary>
    /// A reward model on this model's weights: the same network plus a new score head, initialized as transformers
    /// initializes LlamaForSequenceClassification's (normal, std 0.02).
    /// </summary>
    public Gpt WithScoreHead()
    {
        if (Quantization is { } quantized) throw new InvalidOperationException($"the model is quantized ({quantized.Name}): a reward model needs full-precision weights");
        if (score is not null) return this;
        var rewardModel = WithShape(Config with { ScoreHead = true });
        using (no_grad()) nn.init.normal_(rewardModel.score!.weight!, 0, 0.02);
        return rewardModel;
    }

    /// <summary>A plain model with every adapter folded into its weights (same logits, no adapter).</summary>
    public Gpt Merged()
    {
        var merged = new Gpt(Config, parameters().First().device);
        using var _ = no_grad();
        var target = merged.state_dict();
        var adapted = named_modules().Where(m => m.module is AdaptableLinear { HasAdapter: true })
            .ToDictionary(m => m.name + ".weight", m => ((AdaptableLinear)m.module).MergedWeight());
        foreach (var (name, tensor) in state_dict())
        {
            if (name.Contains("lora_")) continue;
            target[name].copy_(adapted.TryGetValue(name, out var mergedWeight) ? mergedWeight : tensor);
        }
        return merged;
    }

    /// <summary>Parameters split for AdamW: matrices decay; norms, biases and the embedding do not.</summary>
    public (List<Parameter> Decay, List<Parameter> NoDecay) ParameterGroups()
    {
        var decay = new List<Parameter>();
        var noDecay = new List<Parameter>();
        foreach (var (name, p) in named_parameters())
        {
            if (!p.requires_grad) continue;
            if (name.Contains("lora_")) { decay.Add(p); continue; }
            if (p.dim() < 2 || name.StartsWith("wte", StringComparison.Ordinal)) noDecay.Add(p);
            else decay.Add(p);
        }
        return (decay, noDecay);
    }

    private void InitWeights(GptConfig config)
    {
        using var _ = no_grad();
        foreach (var (name, p) in named_parameters())
        {
            if (p.dim() < 2) continue;
            // GPT-2 init; residual projections scaled by 1/sqrt(2 x layers).
            var std = name.EndsWith("proj.weight") || name.EndsWith("down.weight") ? 0.02 / Math.Sqrt(2 * config.Layers) : 0.02;
            nn.init.normal_(p, 0, std);
        }
    }
}
