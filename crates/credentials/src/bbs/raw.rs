//! The project's BBS implementation: zkryptium's own API, unchanged (generators
//! are recomputed inside every zkryptium call; see the module docs of `bbs`).
//!
//! Inputs are validated before they reach zkryptium, whose parsers and proof code
//! index slices without checking lengths (e.g. `BBSplusPoKSignature::from_bytes`
//! on fewer than 240 bytes) or assume matching index and message lists.

use super::{
    check_disclosed_indexes, proof_message_count, Bbs, BbsGenerators, BbsProof, BbsPublicKey,
    BbsSecretKey, BbsSignature, CIPHERSUITE_ID, MAX_MESSAGES,
};
use crate::CredentialError;
use bls12_381_plus::group::Curve;
use me2b_domain::Random;
use zeroize::{Zeroize, Zeroizing};
use zkryptium::bbsplus::ciphersuites::{BbsCiphersuite, Bls12381Sha256};
use zkryptium::bbsplus::generators::Generators;
use zkryptium::bbsplus::keys::{BBSplusPublicKey, BBSplusSecretKey};
use zkryptium::keys::pair::KeyPair;
use zkryptium::schemes::algorithms::BbsBls12381Sha256;
use zkryptium::schemes::generics::{PoKSignature, Signature};
use zkryptium::utils::message::bbsplus_message::BBSplusMessage;
use zkryptium::utils::util::bbsplus_utils::hash_to_scalar;

type Cs = Bls12381Sha256;

/// zkryptium's `Signature::sign`/`verify` and `PoKSignature::proof_gen`/`proof_verify`
/// for BLS12-381-SHA-256. Generators are recomputed on every call. `proof_gen`
/// ignores its `rng` argument: zkryptium draws proof randomness from `thread_rng`
/// and offers no way to pass a generator in.
#[derive(Debug, Default, Clone, Copy)]
pub struct RawZkryptiumBbs;

fn zk_pk(pk: &BbsPublicKey) -> Result<BBSplusPublicKey, CredentialError> {
    BBSplusPublicKey::from_bytes(pk.as_bytes()).map_err(|_| CredentialError::InvalidPublicKey)
}

fn zk_sk(sk: &BbsSecretKey) -> Result<BBSplusSecretKey, CredentialError> {
    BBSplusSecretKey::from_bytes(&sk.to_bytes()[..]).map_err(|_| CredentialError::InvalidSecretKey)
}

fn owned(messages: &[&[u8]]) -> Vec<Vec<u8>> {
    messages.iter().map(|m| m.to_vec()).collect()
}

impl Bbs for RawZkryptiumBbs {
    fn ciphersuite_id(&self) -> &'static str {
        CIPHERSUITE_ID
    }

    fn key_gen(
        &self,
        key_material: &[u8],
        key_info: &[u8],
        key_dst: Option<&[u8]>,
    ) -> Result<BbsSecretKey, CredentialError> {
        if key_material.len() < 32 {
            return Err(CredentialError::KeyMaterialTooShort);
        }
        let pair = KeyPair::<BbsBls12381Sha256>::generate(key_material, Some(key_info), key_dst)
            .map_err(|_| CredentialError::BbsFailure("key generation"))?;
        let (mut sk, _pk) = pair.into_parts();
        let bytes = Zeroizing::new(sk.to_bytes());
        sk.0.zeroize();
        BbsSecretKey::from_bytes(&bytes[..])
    }

    fn public_key(&self, sk: &BbsSecretKey) -> Result<BbsPublicKey, CredentialError> {
        let mut zk = zk_sk(sk)?;
        let pk = zk.public_key();
        zk.0.zeroize();
        BbsPublicKey::from_bytes(&pk.to_bytes())
    }

    fn sign(
        &self,
        sk: &BbsSecretKey,
        pk: &BbsPublicKey,
        header: &[u8],
        messages: &[&[u8]],
    ) -> Result<BbsSignature, CredentialError> {
        if messages.len() > MAX_MESSAGES {
            return Err(CredentialError::TooManyMessages);
        }
        let mut zsk = zk_sk(sk)?;
        let signed = Signature::<BbsBls12381Sha256>::sign(
            Some(&owned(messages)),
            &zsk,
            &zk_pk(pk)?,
            Some(header),
        );
        zsk.0.zeroize();
        let signed = signed.map_err(|_| CredentialError::BbsFailure("sign"))?;
        BbsSignature::from_bytes(&signed.to_bytes())
    }

    fn verify(
        &self,
        pk: &BbsPublicKey,
        signature: &BbsSignature,
        header: &[u8],
        messages: &[&[u8]],
    ) -> Result<(), CredentialError> {
        if messages.len() > MAX_MESSAGES {
            return Err(CredentialError::TooManyMessages);
        }
        let sig = Signature::<BbsBls12381Sha256>::from_bytes(signature.as_bytes())
            .map_err(|_| CredentialError::MalformedSignature)?;
        sig.verify(&zk_pk(pk)?, Some(&owned(messages)), Some(header))
            .map_err(|_| CredentialError::SignatureInvalid)
    }

    fn proof_gen(
        &self,
        pk: &BbsPublicKey,
        signature: &BbsSignature,
        header: &[u8],
        ph: &[u8],
        messages: &[&[u8]],
        disclosed_indexes: &[usize],
        _rng: &dyn Random,
    ) -> Result<BbsProof, CredentialError> {
        check_disclosed_indexes(disclosed_indexes, messages.len())?;
        let proof = PoKSignature::<BbsBls12381Sha256>::proof_gen(
            &zk_pk(pk)?,
            signature.as_bytes(),
            Some(header),
            Some(ph),
            Some(&owned(messages)),
            Some(disclosed_indexes),
        )
        .map_err(|_| CredentialError::BbsFailure("proof_gen"))?;
        BbsProof::from_bytes(&proof.to_bytes())
    }

    fn proof_verify(
        &self,
        pk: &BbsPublicKey,
        proof: &BbsProof,
        header: &[u8],
        ph: &[u8],
        disclosed: &[(usize, &[u8])],
    ) -> Result<(), CredentialError> {
        proof_message_count(proof, disclosed)?;
        let zk_proof = PoKSignature::<BbsBls12381Sha256>::from_bytes(proof.as_bytes())
            .map_err(|_| CredentialError::MalformedProof("zkryptium refused the proof"))?;
        let indexes: Vec<usize> = disclosed.iter().map(|(i, _)| *i).collect();
        let messages: Vec<Vec<u8>> = disclosed.iter().map(|(_, m)| m.to_vec()).collect();
        zk_proof
            .proof_verify(
                &zk_pk(pk)?,
                Some(&messages),
                Some(&indexes),
                Some(header),
                Some(ph),
            )
            .map_err(|_| CredentialError::ProofInvalid)
    }

    fn generators(&self, count: usize) -> Result<BbsGenerators, CredentialError> {
        if count == 0 || count > MAX_MESSAGES + 1 {
            return Err(CredentialError::TooManyMessages);
        }
        let g = Generators::create::<Cs>(count, Some(<Cs as BbsCiphersuite>::API_ID));
        Ok(BbsGenerators {
            p1: g.g1_base_point.to_affine().to_compressed(),
            generators: g
                .values
                .iter()
                .map(|p| p.to_affine().to_compressed())
                .collect(),
        })
    }

    fn hash_to_scalar(&self, msg: &[u8], dst: &[u8]) -> Result<[u8; 32], CredentialError> {
        hash_to_scalar::<Cs>(msg, dst)
            .map(|s| s.to_be_bytes())
            .map_err(|_| CredentialError::BbsFailure("hash_to_scalar"))
    }

    fn map_message_to_scalar(&self, msg: &[u8]) -> Result<[u8; 32], CredentialError> {
        BBSplusMessage::map_message_to_scalar_as_hash::<Cs>(msg, <Cs as BbsCiphersuite>::API_ID)
            .map(|m| m.to_bytes_be())
            .map_err(|_| CredentialError::BbsFailure("map_message_to_scalar"))
    }
}
