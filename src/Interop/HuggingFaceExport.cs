using System.Text.Json;
using System.Text.Json.Nodes;
using Pipeline.Model;
using Pipeline.Bpe;
using static TorchSharp.torch;
using Pipeline.Contracts.Checkpoints;
using Pipeline.Release;

namespace Pipeline.Interop;

/// <summary>
/// Writes a checkpoint as a Hugging Face Llama model folder (what transformers' AutoModelForCausalLM and
/// AutoTokenizer, vLLM and llama.cpp's converter read): config.json, model.safetensors under Llama tensor names,
/// generation_config.json, tokenizer.json, tokenizer_config.json with the chat template, special_tokens_map.json.
/// This project's own tokenizer files go beside them, so `pipeline import` gets the identical tokenizer back.
/// </summary>
public static class HuggingFaceExport
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public static void Write(Gpt model, CheckpointInfo info, TextTokenizer tokenizer, string outDir)
    {
        var config = model.Config;
        if (LlamaLayout.Unsupported(config) is { } reason)
            throw new NotSupportedException($"checkpoint of run {info.RunName} cannot be written as Llama: {reason}");
        Directory.CreateDirectory(outDir);
        var eot = tokenizer.EndOfText;
        var end = tokenizer.SpecialIds[SpecialTokens.EndOfTurn];
        var pad = tokenizer.SpecialIds[SpecialTokens.Pad];

        // A reward model is transformers' LlamaForSequenceClassification with one label (a regression head on the last
        // token that is not padding); it has no output layer, so no tied embedding either.
        var reward = config.ScoreHead;
        var hfConfig = new JsonObject
        {
            ["architectures"] = new JsonArray(reward ? "LlamaForSequenceClassification" : "LlamaForCausalLM"),
            ["model_type"] = "llama",
            ["vocab_size"] = config.VocabSize,
            ["hidden_size"] = config.Width,
            ["intermediate_size"] = config.MlpHidden,
            ["num_hidden_layers"] = config.Layers,
            ["num_attention_heads"] = config.Heads,
            ["num_key_value_heads"] = config.Heads,
            ["head_dim"] = config.HeadDim,
            ["max_position_embeddings"] = config.Context,
            ["rms_norm_eps"] = LlamaLayout.RmsNormEps,
            ["rope_theta"] = config.RopeTheta,
            ["rope_scaling"] = null,
            ["hidden_act"] = "silu",
            ["attention_bias"] = false,
            ["attention_dropout"] = 0.0,
            ["mlp_bias"] = false,
            ["tie_word_embeddings"] = !reward,
            ["initializer_range"] = 0.02,
            // The tokenizer has no beginning-of-sequence token (add_bos_token is false), so neither does the model.
            ["bos_token_id"] = null,
            ["eos_token_id"] = new JsonArray(eot, end),
            ["pad_token_id"] = pad,
            ["torch_dtype"] = "float32",
            ["use_cache"] = true,
        };
        if (reward)
        {
            hfConfig["id2label"] = new JsonObject { ["0"] = "LABEL_0" };
            hfConfig["label2id"] = new JsonObject { ["LABEL_0"] = 0 };
            hfConfig["num_labels"] = 1;
        }
        Write(outDir, "config.json", hfConfig);
        using (no_grad())
            Safetensors.Save(LlamaLayout.ToHuggingFace(model), Path.Combine(outDir, "model.safetensors"), new Dictionary<string, string>
            {
                ["format"] = "pt", ["run"] = info.RunName, ["step"] = info.Step.ToString(), ["tokenizer_hash"] = info.TokenizerHash,
            });
        Write(outDir, "generation_config.json", new JsonObject
        {
            ["bos_token_id"] = null, ["eos_token_id"] = new JsonArray(eot, end), ["pad_token_id"] = pad,
            ["do_sample"] = true, ["temperature"] = 0.8, ["top_k"] = 50, ["top_p"] = 0.95,
        });

        tokenizer.CopyFilesTo(outDir);
        var decoder = new JsonObject();
        foreach (var (content, id) in tokenizer.SpecialIds.OrderBy(kv => kv.Value))
            decoder[id.ToString()] = new JsonObject { ["content"] = content, ["lstrip"] = false, ["normalized"] = false, ["rstrip"] = false, ["single_word"] = false, ["special"] = true };
        var additional = new JsonArray(tokenizer.SpecialIds.Keys.Where(k => k is not (SpecialTokens.EndOfText or SpecialTokens.Pad)).Select(k => (JsonNode)k).ToArray());
        Write(outDir, "tokenizer_config.json", new JsonObject
        {
            ["tokenizer_class"] = "PreTrainedTokenizerFast",
            ["added_tokens_decoder"] = decoder,
            ["bos_token"] = null,
            ["eos_token"] = SpecialTokens.EndOfText,
            ["pad_token"] = SpecialTokens.Pad,
            ["unk_token"] = null,
            ["additional_special_tokens"] = additional,
            ["add_bos_token"] = false,
            ["add_eos_token"] = false,
            ["clean_up_tokenization_spaces"] = false,
            ["model_max_length"] = config.Context,
            // Special-token text is parsed as the token, as in every Hugging Face tokenizer: apply_chat_template
            // renders the turns as text and relies on it (docs/tokenizer.md, "Special tokens").
            ["split_special_tokens"] = false,
            ["chat_template"] = ChatTemplate.Jinja,
        });
        Write(outDir, "special_tokens_map.json", new JsonObject
        {
            ["eos_token"] = SpecialTokens.EndOfText, ["pad_token"] = SpecialTokens.Pad, ["additional_special_tokens"] = additional.DeepClone(),
        });
    }

    internal static void Write(string folder, string name, JsonNode json) =>
        File.WriteAllText(Path.Combine(folder, name), json.ToJsonString(Indented) + "\n");
}
