"""A small GPU sweep: learning rate and width of a two-layer network on random data.

Kept self-contained so the example runs without a dataset; replace the data with yours
(download it once into the shared cache, e.g. in trial 0).
"""


def objective(trial):
    import torch

    lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
    width = trial.suggest_int("width", 16, 256, log=True)
    device = "cuda" if torch.cuda.is_available() else "cpu"

    torch.manual_seed(trial.number)
    x = torch.randn(4096, 32, device=device)
    y = (x[:, :1] * 2 - x[:, 1:2]).sin()
    model = torch.nn.Sequential(
        torch.nn.Linear(32, width), torch.nn.ReLU(), torch.nn.Linear(width, 1)
    ).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)

    loss = None
    for step in range(50):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
        if step % 10 == 9:
            trial.report(loss.item(), step=step)
            if trial.should_prune():
                import optuna

                raise optuna.TrialPruned()
    return loss.item()
