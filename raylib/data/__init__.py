"""Problems and samples: the benchmark formats codeloop reads (`problems`), the sample files models produce and how
a sample becomes a whole program (`samples`). The official HumanEval+ and MBPP+ releases ship in `evalplus/`."""
