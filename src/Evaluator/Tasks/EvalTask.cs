namespace Pipeline.Evaluator.Tasks;

/// <summary>
/// An evaluation task as written in a task file (YAML or JSON, in the manner of lm-evaluation-harness configs).
/// Types: <c>perplexity</c> (bits per byte on a text file), <c>multiple_choice</c> (log-likelihood of each choice,
/// accuracy and length-normalized accuracy, few-shot) and <c>generation</c> (generate, then score against a
/// reference). See docs/evaluator.md.
/// </summary>
public sealed class EvalTask
{
    public string Name { get; set; } = "";
    public int Version { get; set; } = 1;
    public string Type { get; set; } = "";
    /// <summary>JSONL examples (multiple_choice, generation) or a UTF-8 text file (perplexity), relative to the task file.</summary>
    public string Data { get; set; } = "";
    /// <summary>Prompt template; {field} is replaced by the example's field.</summary>
    public string Prompt { get; set; } = "";
    /// <summary>multiple_choice: the field holding the list of choices.</summary>
    public string Choices { get; set; } = "choices";
    /// <summary>multiple_choice: the field holding the index of the right choice; generation: the reference output.</summary>
    public string Answer { get; set; } = "";
    /// <summary>Text put between the prompt and a choice or an answer.</summary>
    public string AnswerPrefix { get; set; } = " ";
    /// <summary>Solved examples (taken from the start of the data, excluded from scoring) put before each prompt.</summary>
    public int FewShot { get; set; }
    /// <summary>generation: exact_match, char_f1, set_f1, jsquad_char_f1, char_lcs_f1, judge (<see cref="Pipeline.Runtime.Scorers"/>).</summary>
    public List<string> Scorers { get; set; } = ["exact_match", "char_f1"];
    public GenerationSettings Generation { get; set; } = new();
    /// <summary>generation: an HTTP endpoint that returns {"score": 1..5} for {input, output, reference, aspect}; empty = off.</summary>
    public string JudgeUrl { get; set; } = "";
    /// <summary>generation: the field holding the evaluation aspect passed to the judge.</summary>
    public string Aspect { get; set; } = "eval_aspect";
    /// <summary>
    /// Wrap prompts in the chat template the alignment stage trains with: each few-shot example becomes a user turn
    /// and an assistant turn, the prompt a user turn followed by an open assistant turn; choices are scored as the
    /// assistant's reply (with its closing &lt;|end|&gt;) and generation also stops at &lt;|end|&gt;. For SFT/DPO models.
    /// </summary>
    public bool Chat { get; set; }
    /// <summary>Use at most this many examples (0 = all).</summary>
    public int Limit { get; set; }

    /// <summary>Put between few-shot examples, and between the last one and the prompt (lm-eval's fewshot_delimiter).</summary>
    public string FewShotDelimiter { get; set; } = "\n\n";
    /// <summary>Text put before the few-shot examples (lm-eval's description).</summary>
    public string Description { get; set; } = "";
    /// <summary>generation with judge: the rubric sent to the judge with each output (ELYZA-tasks-100's 5-point scale).</summary>
    public string Rubric { get; set; } = "";

    /// <summary>Examples already read (an lm-eval task file's dataset, few-shot examples first); null = read <see cref="Data"/>.</summary>
    [YamlDotNet.Serialization.YamlIgnore]
    [System.Text.Json.Serialization.JsonIgnore]
    public List<System.Text.Json.Nodes.JsonObject>? Rows { get; set; }

    /// <summary>Where the task file was read from (for resolving Data and for error messages).</summary>
    public string SourceFile { get; set; } = "";

    public string Key => $"{Name}@{Version}";
}

public sealed class GenerationSettings
{
    public double Temperature { get; set; }
    public int TopK { get; set; }
    public double TopP { get; set; } = 1.0;
    public int MaxTokens { get; set; } = 64;
    public List<string> Stop { get; set; } = ["\n"];

    /// <summary>
    /// Also cut a stop string from the end of each reference (false: references are compared as written, as
    /// llm-jp-eval and lm-eval compare them; a task that stops at "。" then never matches a reference ending in it).
    /// </summary>
    public bool StripStopFromReference { get; set; }
}
