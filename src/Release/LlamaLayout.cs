using Pipeline.Model;
using static TorchSharp.torch;
using Pipeline.Contracts.Checkpoints;

namespace Pipeline.Release;

/// <summary>
/// This project's GPT (RMSNorm, SwiGLU, rotary attention in the rotate-half convention, no biases, tied embeddings) is
/// the Llama architecture, so its weights map one to one onto Hugging Face's Llama tensor names, with the fused
/// q/k/v projection split in three. No rotary permutation is needed: both rotate the two halves of each head.
/// </summary>
public static class LlamaLayout
{
    /// <summary>RMSNorm epsilon of <see cref="RmsNorm"/>'s default, written as rms_norm_eps.</summary>
    public const double RmsNormEps = 1e-5;

    /// <summary>Why a model cannot be written as Llama, or null when it can.</summary>
    public static string? Unsupported(GptConfig config) =>
        config.Norm != "rmsnorm" ? $"Model.Norm '{config.Norm}' (Llama uses rmsnorm)"
        : config.Mlp != "swiglu" ? $"Model.Mlp '{config.Mlp}' (Llama uses swiglu)"
        : null;

    /// <summary>The model's weights under Hugging Face Llama names (lm_head is tied to model.embed_tokens, so not written).</summary>
    public static IEnumerable<KeyValuePair<string, Tensor>> ToHuggingFace(Gpt model)
    {
        if (model.Quantization is { } quantized)
            throw new NotSupportedException($"the checkpoint is quantized ({quantized.Name}): export the full-precision checkpoint it was made from " +
                                            "(for llama.cpp, `--format gguf --type q8_0` or `q4_0` quantizes in the file)");
        var config = model.Config;
        var state = model.state_dict();
        Tensor Get(string name) => state.TryGetValue(name, out var t) ? t : throw new InvalidDataException($"the model has no tensor '{name}'");
        yield return new("model.embed_tokens.weight", Get("wte.weight"));
        for (var i = 0; i < config.Layers; i++)
        {
            var ours = $"blocks.{i}.";
            var theirs = $"model.layers.{i}.";
            var qkv = Get(ours + "attn.qkv.weight").split(config.Width, dim: 0);
            yield return new(theirs + "self_attn.q_proj.weight", qkv[0]);
            yield return new(theirs + "self_attn.k_proj.weight", qkv[1]);
            yield return new(theirs + "self_attn.v_proj.weight", qkv[2]);
            yield return new(theirs + "self_attn.o_proj.weight", Get(ours + "attn.proj.weight"));
            yield return new(theirs + "mlp.gate_proj.weight", Get(ours + "mlp.gate.weight"));
            yield return new(theirs + "mlp.up_proj.weight", Get(ours + "mlp.up.weight"));
            yield return new(theirs + "mlp.down_proj.weight", Get(ours + "mlp.down.weight"));
            yield return new(theirs + "input_layernorm.weight", Get(ours + "norm1.weight"));
            yield return new(theirs + "post_attention_layernorm.weight", Get(ours + "norm2.weight"));
        }
        yield return new("model.norm.weight", Get("norm.weight"));
        // A reward model: LlamaForSequenceClassification's one-label head.
        if (model.ScoreHead is { } score) yield return new("score.weight", score.weight!);
    }

    /// <summary>The inverse of <see cref="ToHuggingFace"/>: this project's tensor names from Hugging Face Llama tensors.</summary>
    public static Dictionary<string, Tensor> FromHuggingFace(IReadOnlyDictionary<string, Tensor> hf, GptConfig config)
    {
        Tensor Get(string name) => hf.TryGetValue(name, out var t) ? t : throw new InvalidDataException($"the Llama checkpoint has no tensor '{name}'");
        var ours = new Dictionary<string, Tensor> { ["wte.weight"] = Get("model.embed_tokens.weight"), ["norm.weight"] = Get("model.norm.weight") };
        for (var i = 0; i < config.Layers; i++)
        {
            var p = $"model.layers.{i}.";
            var b = $"blocks.{i}.";
            ours[b + "attn.qkv.weight"] = cat([Get(p + "self_attn.q_proj.weight"), Get(p + "self_attn.k_proj.weight"), Get(p + "self_attn.v_proj.weight")], 0);
            ours[b + "attn.proj.weight"] = Get(p + "self_attn.o_proj.weight");
            ours[b + "mlp.gate.weight"] = Get(p + "mlp.gate_proj.weight");
            ours[b + "mlp.up.weight"] = Get(p + "mlp.up_proj.weight");
            ours[b + "mlp.down.weight"] = Get(p + "mlp.down_proj.weight");
            ours[b + "norm1.weight"] = Get(p + "input_layernorm.weight");
            ours[b + "norm2.weight"] = Get(p + "post_attention_layernorm.weight");
        }
        if (hf.TryGetValue("lm_head.weight", out var head) && !head.equal(ours["wte.weight"]).item<bool>())
            throw new NotSupportedException("lm_head.weight differs from model.embed_tokens.weight: untied output embeddings are not supported");
        return ours;
    }
}
