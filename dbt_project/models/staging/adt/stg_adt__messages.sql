-- Rename and cast. The MRN becomes patient_key, a salted sha256 pseudonym, here:
-- names, birth dates, MRNs and the raw text stay in raw.
with source as (
    select * from {{ source('adt', 'adt_messages') }}
),

salt as (
    select salt from {{ source('adt', 'pseudonym_salt') }}
)

select
    m.sending_facility as facility_code,
    m.sending_facility || '|' || m.visit_number as encounter_key,
    m.visit_number,
    case
        when m.mrn is not null and m.mrn <> ''
            then encode(sha256(convert_to(s.salt || '|' || m.sending_facility || '|' || m.mrn, 'UTF8')), 'hex')
    end as patient_key,
    m.control_id,
    m.trigger_event,
    m.hl7_version,
    m.patient_class,
    nullif(m.patient_type, '') as patient_type,
    m.unit as unit_code,
    nullif(m.room, '') as room,
    nullif(m.bed, '') as bed,
    m.prior_unit as prior_unit_code,
    m.message_ts,
    m.event_ts,
    m.discharge_ts,
    m.admit_ts,
    m.received_date,
    m.file_path,
    m.message_index,
    m.batch_id,
    m.loaded_at as source_loaded_at
from source m
cross join salt s
