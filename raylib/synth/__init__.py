"""Synthetic preference data (CodeFavor), the evaluation of code judges on CodePrefBench-style pairs, and
reflection sequences (ReflectionCoder).

    pairs.py             the one pair schema every method writes; CodePrefBench rows made from pairs
    sections.py          reading an LLM's answer: [HEADER] sections, BEGIN/END-marked sections, YES/NO, code fences
    prompts.py           versioned prompt files (prompts/*.yaml) and filling their placeholders
    commit_instruct.py   Commit-Instruct: a commit -> explanation -> improvement? -> instruction, criteria, codes
    critic_evol.py       Critic-Evol: a weak solution -> reflection -> criteria, second attempt, feedback
    execution_pairs.py   pairs the sandbox verifies: passing vs failing, faster vs slower (measured)
    bench.py             CodePrefBench files, both-order accounting, position bias, summary and report
    judges.py            the judges asked on a bench: a pairwise classifier, a scalar reward model, an LLM
    runner.py            the Ray shell: the judges on a Ray Data actor pool
    reflection_seq.py    ReflectionCoder's reflection sequences: each round's chat, code read out of an answer,
                         execution blocks from sandbox results, the training sample
    reflection_loop.py   the rounds: the engine answers every unfinished problem, the sandbox runs every program

Jobs: jobs/synth_prefs.py (the three methods), jobs/pref_bench.py (a judge on a bench), jobs/synth_reflection.py
(reflection sequences).
"""
