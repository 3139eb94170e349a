using static TorchSharp.torch;

namespace Pipeline.Alignment;

/// <summary>
/// Direct Preference Optimization (Rafailov et al. 2023): loss = -log σ(β·[(log π(c) − log π_ref(c)) − (log π(r) − log π_ref(r))]),
/// with sequence log-probabilities summed over the reply tokens. The implicit rewards β·(log π − log π_ref) give the
/// reported reward margin and accuracy (chosen preferred).
/// </summary>
public static class Dpo
{
    public static Tensor Loss(Tensor policyChosen, Tensor policyRejected, Tensor referenceChosen, Tensor referenceRejected, double beta = 0.1)
    {
        var margin = (policyChosen - referenceChosen) - (policyRejected - referenceRejected);
        return -nn.functional.logsigmoid(beta * margin).mean();
    }

    public static (double Margin, double Accuracy) Rewards(Tensor policyChosen, Tensor policyRejected, Tensor referenceChosen, Tensor referenceRejected, double beta = 0.1)
    {
        using var _ = no_grad();
        var chosen = beta * (policyChosen - referenceChosen);
        var rejected = beta * (policyRejected - referenceRejected);
        return ((chosen - rejected).mean().item<float>(), (chosen > rejected).to(float32).mean().item<float>());
    }
}
