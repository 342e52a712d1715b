"""Minimal DistributedDataParallel training loop for the pytorch-simple runtime."""
import os

import torch
import torch.distributed as dist


def main() -> None:
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend=backend)
    rank = dist.get_rank()
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0"))) if backend == "nccl" else torch.device("cpu")
    model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(32, 1).to(device))
    opt = torch.optim.SGD(model.parameters(), lr=float(os.environ.get("LEARNING_RATE", "0.01")))
    for step in range(int(os.environ.get("STEPS", "100"))):
        x = torch.randn(64, 32, device=device)
        loss = model(x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if rank == 0 and step % 10 == 0:
            print(f"step={step} loss={loss.item():.4f}", flush=True)
    if rank == 0 and os.path.isdir("/models"):
        torch.save(model.module.state_dict(), "/models/model.pt")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
