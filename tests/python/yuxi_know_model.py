"""A model of Yuxi-Know's Config (src/config/app.py, v0.4.4) for the tests, written from its
fields as the fixtures show them (samples/saves/config/base.toml and the Yuxi-Know fixtures it was made from): the
twelve fields save() persists, with their defaults and descriptions, and the provider table
(``model_names``) and runtime status it keeps out of save() (``exclude``). Works with
pydantic 1 (Debian 12) and 2 (upstream)."""

from typing import Dict, List

from pydantic import BaseModel, Field


class ChatModelProvider(BaseModel):
    name: str
    url: str = ""
    base_url: str
    default: str = ""
    env: str = ""
    models: List[str]
    custom: bool = False


SILICONFLOW = ChatModelProvider(
    name="SiliconFlow", url="https://cloud.siliconflow.cn/models",
    base_url="https://api.siliconflow.cn/v1", default="deepseek-ai/DeepSeek-V3.2",
    env="SILICONFLOW_API_KEY",
    models=["deepseek-ai/DeepSeek-V3.2", "THUDM/GLM-4-9B-0414", "BAAI/bge-m3"])
OPENAI = ChatModelProvider(
    name="OpenAI", url="https://platform.openai.com/docs/models",
    base_url="https://api.openai.com/v1", default="gpt-4o-mini", env="OPENAI_API_KEY",
    models=["gpt-4o", "gpt-4o-mini"])


class Config(BaseModel):
    # basic
    save_dir: str = Field(default="saves", description="Where data is saved")
    model_dir: str = Field(default="", description="Local model directory")
    # features
    enable_reranker: bool = Field(default=False, description="Rerank retrieved chunks")
    enable_content_guard: bool = Field(default=False, description="Content moderation")
    enable_content_guard_llm: bool = Field(default=False, description="LLM moderation")
    enable_web_search: bool = Field(default=False, description="Web search")
    # models
    default_model: str = Field(default="siliconflow/deepseek-ai/DeepSeek-V3.2",
                               description="Default chat model")
    fast_model: str = Field(default="siliconflow/THUDM/GLM-4-9B-0414",
                            description="Fast model")
    embed_model: str = Field(default="siliconflow/BAAI/bge-m3", description="Embedding model")
    reranker: str = Field(default="siliconflow/BAAI/bge-reranker-v2-m3",
                          description="Reranker model")
    content_guard_llm_model: str = Field(
        default="siliconflow/Qwen/Qwen3-235B-A22B-Instruct-2507",
        description="Moderation model")
    # agents
    default_agent_id: str = Field(default="", description="Default agent")
    # not persisted by save()
    model_names: Dict[str, ChatModelProvider] = Field(
        default_factory=lambda: {"siliconflow": SILICONFLOW, "openai": OPENAI},
        description="Chat model providers", exclude=True)
    model_provider_status: Dict[str, bool] = Field(
        default_factory=dict, description="Usable providers", exclude=True)
