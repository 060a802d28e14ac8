//! Hub clients (Hugging Face, ModelScope, Git LFS hosts). Filled in by the pipeline issue (#3).
