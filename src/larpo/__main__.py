from larpo.cli import train

train()
