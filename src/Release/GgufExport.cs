using System.Text.Json;
using Pipeline.Bpe;
using Pipeline.Contracts.Checkpoints;
using Pipeline.Model;
using static TorchSharp.torch;

namespace Pipeline.Release;

/// <summary>
/// Writes a checkpoint as a GGUF file for llama.cpp (and Ollama, LM Studio, node-llama-cpp): the `llama` architecture's
/// metadata, the tensors under the names and in the layouts llama.cpp's own Hugging Face converter
/// (convert_hf_to_gguf.py) writes for a Llama, and the byte-level BPE tokenizer as `tokenizer.ggml.*`.
/// </summary>
public static class GgufExport
{
    /// <summary>
    /// llama.cpp picks its pre-tokenizer by name from a fixed list; ours is a pattern of our own. "gpt-2" is the closest
    /// measured (bench gguf, docs/benchmarks.md: 99 % of held-out tokens split alike in English and Japanese, ahead of
    /// llama-bpe and qwen2): a space joins the letters, digits or punctuation after it, as ours does. It differs where ours
    /// keeps Japanese apart from Latin letters touching it, groups digits by three and keeps one or two punctuation
    /// characters with a number. A prompt given as ids (as the tests do) is unaffected.
    /// </summary>
    public const string DefaultPreTokenizer = "gpt-2";

    public static readonly IReadOnlyDictionary<string, GgmlType> Types = new Dictionary<string, GgmlType>
    {
        ["f32"] = GgmlType.F32, ["f16"] = GgmlType.F16, ["q8_0"] = GgmlType.Q8_0, ["q4_0"] = GgmlType.Q4_0,
    };

    // general.file_type: llama.cpp's llama_ftype (ALL_F32, MOSTLY_F16, MOSTLY_Q4_0, MOSTLY_Q8_0).
    private static uint FileType(GgmlType type) => type switch { GgmlType.F32 => 0, GgmlType.F16 => 1, GgmlType.Q4_0 => 2, _ => 7 };

    public static void Write(Gpt model, CheckpointInfo info, TextTokenizer tokenizer, Stream output, GgmlType type, string preTokenizer = DefaultPreTokenizer)
    {
        using (no_grad())
            Write(model.Config, info, tokenizer, Tensors(model), output, type, preTokenizer);
    }

    /// <summary>The model's weights under llama.cpp's names and in its layout.</summary>
    public static IEnumerable<(string Name, Tensor Weights)> Tensors(Gpt model) =>
        LlamaLayout.ToHuggingFace(model).Select(t => ToLlamaCpp(t.Key, t.Value, model.Config));

    /// <summary>Writes <paramref name="tensors"/> (llama.cpp's names and layout) with the metadata of <paramref name="config"/>.</summary>
    public static void Write(GptConfig config, CheckpointInfo info, TextTokenizer tokenizer, IEnumerable<(string Name, Tensor Weights)> tensors, Stream output,
                             GgmlType type, string preTokenizer = DefaultPreTokenizer)
    {
        if (LlamaLayout.Unsupported(config) is { } reason)
            throw new NotSupportedException($"checkpoint of run {info.RunName} cannot be written as Llama: {reason}");
        if (config.ScoreHead)
            throw new NotSupportedException($"checkpoint of run {info.RunName} is a reward model: llama.cpp's llama architecture has no score head " +
                                            "(export it with --format hf, as LlamaForSequenceClassification)");
        var gguf = new GgufWriter();
        gguf.Add("general.architecture", "llama");
        gguf.Add("general.name", $"{info.RunName} step {info.Step}");
        gguf.Add("general.file_type", FileType(type));
        gguf.Add("general.quantization_version", 2u);
        gguf.Add("llama.context_length", (uint)config.Context);
        gguf.Add("llama.embedding_length", (uint)config.Width);
        gguf.Add("llama.block_count", (uint)config.Layers);
        gguf.Add("llama.feed_forward_length", (uint)config.MlpHidden);
        gguf.Add("llama.attention.head_count", (uint)config.Heads);
        gguf.Add("llama.attention.head_count_kv", (uint)config.Heads);
        gguf.Add("llama.attention.key_length", (uint)config.HeadDim);
        gguf.Add("llama.attention.value_length", (uint)config.HeadDim);
        gguf.Add("llama.rope.dimension_count", (uint)config.HeadDim);
        gguf.Add("llama.rope.freq_base", (float)config.RopeTheta);
        gguf.Add("llama.attention.layer_norm_rms_epsilon", (float)LlamaLayout.RmsNormEps);
        gguf.Add("llama.vocab_size", (uint)config.VocabSize);
        AddTokenizer(gguf, tokenizer, preTokenizer);
        foreach (var (name, weights) in tensors)
        {
            var shape = weights.shape;
            var values = weights.to_type(ScalarType.Float32).contiguous().data<float>().ToArray();
            // As the converter does: norms (one dimension) stay f32; matrices take the requested type, or f16 when their
            // rows do not split into quantization blocks.
            var tensorType = shape.Length == 1 ? GgmlType.F32
                : type is GgmlType.Q8_0 or GgmlType.Q4_0 && shape[^1] % GgufWriter.BlockSize != 0 ? GgmlType.F16 : type;
            gguf.AddTensor(name, shape, tensorType, values);
        }
        gguf.Save(output);
    }

    /// <summary>
    /// A Hugging Face Llama tensor under llama.cpp's name. q and k are permuted as the converter permutes them: Hugging
    /// Face's (and our) rotary embedding rotates the two halves of a head, llama.cpp's `llama` rotates adjacent pairs,
    /// so each head's rows are interleaved: row r of half h goes to row 2r + h.
    /// </summary>
    public static (string Name, Tensor Weights) ToLlamaCpp(string hfName, Tensor weights, GptConfig config)
    {
        if (hfName == "model.embed_tokens.weight") return ("token_embd.weight", weights);
        if (hfName == "model.norm.weight") return ("output_norm.weight", weights);
        var parts = hfName.Split('.', 4); // model, layers, i, rest
        var block = $"blk.{parts[2]}.";
        return parts[3] switch
        {
            "self_attn.q_proj.weight" => (block + "attn_q.weight", PermuteForRope(weights, config.Heads)),
            "self_attn.k_proj.weight" => (block + "attn_k.weight", PermuteForRope(weights, config.Heads)),
            "self_attn.v_proj.weight" => (block + "attn_v.weight", weights),
            "self_attn.o_proj.weight" => (block + "attn_output.weight", weights),
            "mlp.gate_proj.weight" => (block + "ffn_gate.weight", weights),
            "mlp.up_proj.weight" => (block + "ffn_up.weight", weights),
            "mlp.down_proj.weight" => (block + "ffn_down.weight", weights),
            "input_layernorm.weight" => (block + "attn_norm.weight", weights),
            "post_attention_layernorm.weight" => (block + "ffn_norm.weight", weights),
            _ => throw new InvalidDataException($"no llama.cpp name for tensor '{hfName}'"),
        };
    }

    public static Tensor PermuteForRope(Tensor weights, long heads)
    {
        var (rows, columns) = (weights.shape[0], weights.shape[1]);
        return weights.reshape(heads, 2, rows / heads / 2, columns).transpose(1, 2).reshape(rows, columns);
    }

    /// <summary>
    /// The tokenizer as llama.cpp's "gpt2" (byte-level BPE) vocabulary: tokens in GPT-2's printable byte form, as
    /// vocab.json has them, the merges in rank order, and the special tokens as control tokens.
    /// </summary>
    private static void AddTokenizer(GgufWriter gguf, TextTokenizer tokenizer, string preTokenizer)
    {
        var vocab = JsonSerializer.Deserialize<Dictionary<string, int>>(File.ReadAllText(Path.Combine(tokenizer.Folder, "vocab.json")))
                    ?? throw new InvalidDataException($"'{tokenizer.Folder}/vocab.json' is empty");
        var tokens = new string[tokenizer.VocabSize];
        foreach (var (token, id) in vocab) tokens[id] = token;
        if (Array.IndexOf(tokens, null) is var missing and >= 0) throw new InvalidDataException($"'{tokenizer.Folder}/vocab.json' has no token {missing}");
        var merges = File.ReadLines(Path.Combine(tokenizer.Folder, "merges.txt")).Where(l => l.Length > 0 && !l.StartsWith("#version", StringComparison.Ordinal)).ToList();
        // llama_token_type: 1 normal, 3 control.
        var types = Enumerable.Range(0, tokens.Length).Select(id => id < tokenizer.Meta.MergeableTokens ? 1 : 3).ToList();
        gguf.Add("tokenizer.ggml.model", "gpt2");
        gguf.Add("tokenizer.ggml.pre", preTokenizer);
        gguf.Add("tokenizer.ggml.tokens", tokens!);
        gguf.Add("tokenizer.ggml.token_type", types);
        gguf.Add("tokenizer.ggml.merges", merges);
        gguf.Add("tokenizer.ggml.eos_token_id", (uint)tokenizer.EndOfText);
        gguf.Add("tokenizer.ggml.eot_token_id", (uint)tokenizer.SpecialIds[SpecialTokens.EndOfTurn]);
        gguf.Add("tokenizer.ggml.padding_token_id", (uint)tokenizer.SpecialIds[SpecialTokens.Pad]);
        // The model was trained with <|endoftext|> between documents (as GPT-2 was), so it is the one to begin a
        // sequence with; llama.cpp is told not to add it, as the Hugging Face export's tokenizer does not.
        gguf.Add("tokenizer.ggml.bos_token_id", (uint)tokenizer.EndOfText);
        gguf.Add("tokenizer.ggml.add_bos_token", false);
        gguf.Add("tokenizer.ggml.add_eos_token", false);
        gguf.Add("tokenizer.chat_template", ChatTemplate.Jinja);
    }
}
