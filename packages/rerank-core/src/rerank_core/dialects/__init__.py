"""Registry of wire dialects, one module per provider."""

from __future__ import annotations

from rerank_core.dialects.azure import AzureDialect
from rerank_core.dialects.base import Dialect, ParsedResponse, RankFieldsWarning
from rerank_core.dialects.bedrock import BedrockDialect
from rerank_core.dialects.cloudflare import CloudflareDialect
from rerank_core.dialects.cohere import CohereDialect, CohereV1Dialect
from rerank_core.dialects.contextual import ContextualDialect
from rerank_core.dialects.dashscope import DashScopeCompatibleDialect, DashScopeDialect
from rerank_core.dialects.deepinfra import DeepInfraDialect
from rerank_core.dialects.fireworks import FireworksDialect
from rerank_core.dialects.generic import GenericDialect
from rerank_core.dialects.infinity import InfinityDialect
from rerank_core.dialects.jina import JinaDialect
from rerank_core.dialects.mixedbread import MixedbreadDialect
from rerank_core.dialects.nebius import NebiusDialect
from rerank_core.dialects.nvidia import NvidiaDialect
from rerank_core.dialects.onerouter import OneRouterDialect
from rerank_core.dialects.openrouter import OpenRouterDialect
from rerank_core.dialects.pinecone import PineconeDialect
from rerank_core.dialects.siliconflow import SiliconFlowDialect
from rerank_core.dialects.tei import TEIDialect
from rerank_core.dialects.together import TogetherDialect
from rerank_core.dialects.vertex import VertexDialect
from rerank_core.dialects.vllm import VLLMDialect
from rerank_core.dialects.voyage import VoyageDialect
from rerank_core.dialects.watsonx import WatsonxDialect
from rerank_core.dialects.zeroentropy import ZeroEntropyDialect
from rerank_core.errors import ConfigurationError

DIALECTS: dict[str, type[Dialect]] = {
    dialect.name: dialect
    for dialect in (
        FireworksDialect,
        NebiusDialect,
        GenericDialect,
        TogetherDialect,
        OneRouterDialect,
        CohereDialect,
        CohereV1Dialect,
        JinaDialect,
        VoyageDialect,
        MixedbreadDialect,
        PineconeDialect,
        NvidiaDialect,
        TEIDialect,
        VLLMDialect,
        InfinityDialect,
        BedrockDialect,
        VertexDialect,
        AzureDialect,
        DeepInfraDialect,
        OpenRouterDialect,
        SiliconFlowDialect,
        ZeroEntropyDialect,
        DashScopeDialect,
        DashScopeCompatibleDialect,
        ContextualDialect,
        CloudflareDialect,
        WatsonxDialect,
    )
}


def get_dialect(name: str) -> Dialect:
    try:
        return DIALECTS[name]()
    except KeyError:
        known = ", ".join(sorted(DIALECTS))
        raise ConfigurationError(f"unknown provider {name!r}", hint=f"Known providers: {known}, local") from None


__all__ = ["DIALECTS", "Dialect", "ParsedResponse", "RankFieldsWarning", "get_dialect"]
