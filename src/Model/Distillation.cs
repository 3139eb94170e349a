using Pipeline.Contracts.Checkpoints;
using static TorchSharp.torch;

namespace Pipeline.Model;

/// <summary>The distillation loss of <see cref="DistillationConfig"/>, on logits of shape (B, T, V).</summary>
public static class Distillation
{
    public sealed record Parts(Tensor Loss, Tensor CrossEntropy, Tensor Divergence);

    public static Parts Loss(Tensor studentLogits, Tensor teacherLogits, Tensor targets, DistillationConfig config)
    {
        using var scope = NewDisposeScope();
        var vocab = studentLogits.shape[^1];
        var student = studentLogits.to(ScalarType.Float32).reshape(-1, vocab);
        var teacher = teacherLogits.detach().to(ScalarType.Float32).reshape(-1, vocab);
        var crossEntropy = nn.functional.cross_entropy(student, targets.reshape(-1));
        var t = config.Temperature;
        var studentLog = nn.functional.log_softmax(student / t, 1);
        Tensor divergence;
        if (config.TopK > 0 && config.TopK < vocab)
        {
            // The teacher's top k, renormalized among themselves; the student's log-probabilities of the same tokens.
            var (values, indices) = teacher.topk(config.TopK, dim: 1);
            var teacherLog = nn.functional.log_softmax(values / t, 1);
            divergence = (teacherLog.exp() * (teacherLog - studentLog.gather(1, indices))).sum(1).mean();
        }
        else
        {
            var teacherLog = nn.functional.log_softmax(teacher / t, 1);
            divergence = config.Divergence == "reverse"
                ? (studentLog.exp() * (studentLog - teacherLog)).sum(1).mean()
                : (teacherLog.exp() * (teacherLog - studentLog)).sum(1).mean();
        }
        // T²: the soft targets' gradients scale as 1/T², so the term keeps its weight as T changes (Hinton et al.).
        var loss = config.Alpha * crossEntropy + (1 - config.Alpha) * t * t * divergence;
        return new Parts(loss.MoveToOuterDisposeScope(), crossEntropy.detach().MoveToOuterDisposeScope(), divergence.detach().MoveToOuterDisposeScope());
    }
}
