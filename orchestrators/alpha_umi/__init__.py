"""alpha-UMi (Shen et al., 2024): planner, caller and summarizer over tools, as pure async code."""
