package tpm

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2"

	"github.com/hellosim/hellosim/tpm/internal/platform"
)

// NV indices of the TCG EK Credential Profile (version 2.5, §2.2.1.4 and
// §2.2.1.5) that this package reads.
const (
	// NVRSA2048EKCert holds the RSA-2048 EK certificate (low range, the EK
	// from the TCG default template L-1).
	NVRSA2048EKCert uint32 = 0x01C00002
	// NVECCP256EKCert holds the ECC NIST P-256 EK certificate (low range,
	// template L-2).
	NVECCP256EKCert uint32 = 0x01C0000A
	// NVHighRangeFirst and NVHighRangeLast bound the EK certificates of the
	// high-range templates (H-1 to H-7, e.g. ECC P-384 at 0x01C00016).
	NVHighRangeFirst uint32 = 0x01C00012
	NVHighRangeLast  uint32 = 0x01C0001E
	// NVEKChainFirst and NVEKChainLast bound the indices where a
	// manufacturer stores the EK certificate's chain (intermediates).
	NVEKChainFirst uint32 = 0x01C00100
	NVEKChainLast  uint32 = 0x01C001FF
)

// maxNVCert bounds what is read from one certificate index: EK
// certificates are a kilobyte or two, and a hostile TPM must not make the
// library allocate at will.
const maxNVCert = 8 << 10

// nvChunk is the size of one TPM2_NV_Read when the TPM does not tell its
// TPM_PT_NV_BUFFER_MAX; every TPM 2.0 accepts 512 (PC Client profile).
const nvChunk = 512

// nvIndices lists the defined NV indices in [first, last]. t.mu must be held.
func (t *TPM) nvIndices(ctx context.Context, first, last uint32) ([]uint32, error) {
	hs, err := t.handles(ctx, first)
	if err != nil {
		return nil, err
	}
	var out []uint32
	for _, h := range hs {
		if uint32(h) >= first && uint32(h) <= last {
			out = append(out, uint32(h))
		}
	}
	return out, nil
}

// nvBufferMax is TPM_PT_NV_BUFFER_MAX, or nvChunk when the TPM does not
// say. t.mu must be held.
func (t *TPM) nvBufferMax(ctx context.Context) int {
	var rsp *tpm2.GetCapabilityResponse
	err := t.run(ctx, func() (err error) {
		rsp, err = tpm2.GetCapability{Capability: tpm2.TPMCapTPMProperties, Property: uint32(tpm2.TPMPTNVBufferMax), PropertyCount: 1}.Execute(t.tr)
		return err
	})
	if err != nil {
		return nvChunk
	}
	props, err := rsp.CapabilityData.Data.TPMProperties()
	if err != nil || len(props.TPMProperty) == 0 || props.TPMProperty[0].Property != tpm2.TPMPTNVBufferMax {
		return nvChunk
	}
	v := int(props.TPMProperty[0].Value)
	if v < 64 || v > 4096 {
		return nvChunk
	}
	return v
}

// readNV reads a whole NV index in chunks of at most chunk bytes, with the
// index's own (empty) authValue when it allows that (TPMA_NV_AUTHREAD, as
// EK certificate indices do), else the owner's (empty). At most limit
// bytes. t.mu must be held.
func (t *TPM) readNV(ctx context.Context, index uint32, chunk, limit int) ([]byte, error) {
	var pub *tpm2.NVReadPublicResponse
	err := t.run(ctx, func() (err error) {
		pub, err = tpm2.NVReadPublic{NVIndex: tpm2.TPMHandle(index)}.Execute(t.tr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read NV public %#x: %w", index, err)
	}
	info, err := pub.NVPublic.Contents()
	if err != nil {
		return nil, fmt.Errorf("read NV public %#x: %w", index, err)
	}
	if uint32(info.NVIndex) != index {
		return nil, fmt.Errorf("read NV public %#x: %w: the TPM describes index %#x", index, errMalformed, uint32(info.NVIndex))
	}
	size := int(info.DataSize)
	if size == 0 || size > limit {
		return nil, fmt.Errorf("NV index %#x holds %d bytes, outside 1..%d", index, size, limit)
	}
	nv := tpm2.NamedHandle{Handle: tpm2.TPMHandle(index), Name: pub.NVName}
	auth := tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(nil)}
	if info.Attributes.AuthRead {
		auth = tpm2.AuthHandle{Handle: nv.Handle, Name: nv.Name, Auth: tpm2.PasswordAuth(nil)}
	}
	out := make([]byte, 0, size)
	for len(out) < size {
		n := min(chunk, size-len(out))
		var rsp *tpm2.NVReadResponse
		err := t.run(ctx, func() (err error) {
			rsp, err = tpm2.NVRead{AuthHandle: auth, NVIndex: nv, Size: uint16(n), Offset: uint16(len(out))}.Execute(t.tr)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("read NV %#x at %d: %w", index, len(out), err)
		}
		if len(rsp.Data.Buffer) != n {
			return nil, fmt.Errorf("read NV %#x at %d: %w: %d bytes, not %d", index, len(out), errMalformed, len(rsp.Data.Buffer), n)
		}
		out = append(out, rsp.Data.Buffer...)
	}
	return out, nil
}

// The manufacturer's NV writes are not part of the API: tpm/tpmtest reaches
// them through tpm/internal/platform.
func init() {
	platform.WriteEndorsementNV = func(ctx context.Context, t any, index uint32, data []byte) error {
		tp, ok := t.(*TPM)
		if !ok || tp == nil {
			return fmt.Errorf("tpm: write NV %#x: %T is not a *tpm.TPM", index, t)
		}
		return tp.writeEndorsementNV(ctx, index, data)
	}
	platform.DeleteEndorsementNV = func(ctx context.Context, t any, index uint32) error {
		tp, ok := t.(*TPM)
		if !ok || tp == nil {
			return fmt.Errorf("tpm: delete NV %#x: %T is not a *tpm.TPM", index, t)
		}
		return tp.deleteEndorsementNV(ctx, index)
	}
}

// writeEndorsementNV defines the NV index with platform authorization and
// writes data into it, as a TPM manufacturer provisions an EK certificate
// or its chain (TCG EK Credential Profile §2.2.1.3: PPWRITE, PPREAD,
// OWNERREAD, AUTHREAD, NO_DA, PLATFORMCREATE). An index already defined is
// replaced. It needs the platform hierarchy's authorization to be empty,
// which holds on the simulator and swtpm and never on a shipped PC: it is
// for test TPMs (tpmtest.Manufacture, through tpm/internal/platform).
func (t *TPM) writeEndorsementNV(ctx context.Context, index uint32, data []byte) error {
	if len(data) == 0 || len(data) > maxNVCert {
		return fmt.Errorf("tpm: write NV %#x: %d bytes, outside 1..%d", index, len(data), maxNVCert)
	}
	if err := t.lock(); err != nil {
		return err
	}
	defer t.mu.Unlock()
	if err := t.undefineNV(ctx, index); err != nil {
		return fmt.Errorf("tpm: write NV %#x: %w", index, err)
	}
	pub := tpm2.TPMSNVPublic{
		NVIndex: tpm2.TPMHandle(index),
		NameAlg: tpm2.TPMAlgSHA256,
		Attributes: tpm2.TPMANV{
			PPWrite: true, PPRead: true, OwnerRead: true, AuthRead: true,
			NoDA: true, PlatformCreate: true, NT: tpm2.TPMNTOrdinary,
		},
		DataSize: uint16(len(data)),
	}
	platform := tpm2.AuthHandle{Handle: tpm2.TPMRHPlatform, Auth: tpm2.PasswordAuth(nil)}
	err := t.run(ctx, func() error {
		_, err := tpm2.NVDefineSpace{AuthHandle: platform, PublicInfo: tpm2.New2B(pub)}.Execute(t.tr)
		return err
	})
	if err != nil {
		return fmt.Errorf("tpm: define NV %#x: %w", index, err)
	}
	name, err := tpm2.NVName(&pub)
	if err != nil {
		return fmt.Errorf("tpm: write NV %#x: %w", index, err)
	}
	nv := tpm2.NamedHandle{Handle: tpm2.TPMHandle(index), Name: *name}
	chunk := t.nvBufferMax(ctx)
	for off := 0; off < len(data); off += chunk {
		part := data[off:min(off+chunk, len(data))]
		err := t.run(ctx, func() error {
			_, err := tpm2.NVWrite{AuthHandle: platform, NVIndex: nv, Data: tpm2.TPM2BMaxNVBuffer{Buffer: part}, Offset: uint16(off)}.Execute(t.tr)
			return err
		})
		if err != nil {
			return fmt.Errorf("tpm: write NV %#x at %d: %w", index, off, err)
		}
	}
	t.forgetTrust()
	return nil
}

// deleteEndorsementNV removes an NV index defined with platform
// authorization (see writeEndorsementNV); an index that is not defined is
// not an error. For test TPMs.
func (t *TPM) deleteEndorsementNV(ctx context.Context, index uint32) error {
	if err := t.lock(); err != nil {
		return err
	}
	defer t.mu.Unlock()
	if err := t.undefineNV(ctx, index); err != nil {
		return fmt.Errorf("tpm: delete NV %#x: %w", index, err)
	}
	t.forgetTrust()
	return nil
}

// undefineNV removes index when it is defined. t.mu must be held.
func (t *TPM) undefineNV(ctx context.Context, index uint32) error {
	have, err := t.nvIndices(ctx, index, index)
	if err != nil || len(have) == 0 {
		return err
	}
	var pub *tpm2.NVReadPublicResponse
	err = t.run(ctx, func() (err error) {
		pub, err = tpm2.NVReadPublic{NVIndex: tpm2.TPMHandle(index)}.Execute(t.tr)
		return err
	})
	if err != nil {
		return err
	}
	info, err := pub.NVPublic.Contents()
	if err != nil {
		return err
	}
	hierarchy := tpm2.TPMRHOwner
	if info.Attributes.PlatformCreate {
		hierarchy = tpm2.TPMRHPlatform
	}
	err = t.run(ctx, func() error {
		_, err := tpm2.NVUndefineSpace{
			AuthHandle: tpm2.AuthHandle{Handle: hierarchy, Auth: tpm2.PasswordAuth(nil)},
			NVIndex:    tpm2.NamedHandle{Handle: tpm2.TPMHandle(index), Name: pub.NVName},
		}.Execute(t.tr)
		return err
	})
	if errors.Is(err, tpm2.TPMRCHandle) {
		return nil
	}
	return err
}

// ReadEndorsementNV returns the contents of an NV index (an EK certificate
// or a chain index), or nil when the index is not defined.
func (t *TPM) ReadEndorsementNV(ctx context.Context, index uint32) ([]byte, error) {
	if err := t.lock(); err != nil {
		return nil, err
	}
	defer t.mu.Unlock()
	have, err := t.nvIndices(ctx, index, index)
	if err != nil {
		return nil, fmt.Errorf("tpm: read NV %#x: %w", index, err)
	}
	if len(have) == 0 {
		return nil, nil
	}
	b, err := t.readNV(ctx, index, t.nvBufferMax(ctx), maxNVCert)
	if err != nil {
		return nil, fmt.Errorf("tpm: %w", err)
	}
	return b, nil
}
