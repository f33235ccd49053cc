"""Generation: settings, prompts, engines (one file per backend behind a Protocol), the Ray Data stage that runs
engine actors, the resumable samples file and the generation loop every generating job shares."""
